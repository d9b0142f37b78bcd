"""Execute a tour notebook end to end, headless, in a real Jupyter kernel.

    python notebooks/run.py notebooks/quickstart.ipynb [--store DIR] [--output FILE]

The notebook runs in its own folder, so its runs land in ``.nbtrack/`` beside it unless ``--store``
(or ``NBTRACK_TRACKING_URI``) says otherwise. The executed copy is written next to it as
``<name>.executed.ipynb``, its plotly widgets saved as the figures they ended with (see
static_figures.py). Exits non-zero, showing the failing cell, if any cell raises.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from traitlets.config import Config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--store", help="tracking store for the notebook's runs")
    parser.add_argument("--output", type=Path, help="where to write the executed notebook")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path: Path = args.notebook.resolve()
    if not path.is_file():
        parser.error(f"{path} does not exist")
    if args.store:
        os.environ["NBTRACK_TRACKING_URI"] = str(Path(args.store).resolve())
    from static_figures import COLLECT, collected, make_static

    unreadable = (OSError, ValueError, TypeError, KeyError, AttributeError)
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except (*unreadable, nbformat.ValidationError) as exc:
        first = str(exc).strip().splitlines()[0]
        parser.error(f"{path} is not a notebook nbformat can read: {first}")
    output = args.output or path.with_suffix(".executed.ipynb")
    print(f"executing {path.name} ({len(nb.cells)} cells) in a fresh kernel ...", flush=True)
    started = time.perf_counter()
    nb.cells.append(nbformat.v4.new_code_cell(COLLECT))  # the figures as they ended
    client = None
    try:
        with tempfile.TemporaryDirectory(prefix="nbtrack-kernel-") as sockets:
            client = NotebookClient(
                nb,
                timeout=args.timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
                config=_unix_sockets(Path(sockets)),
            )
            client.execute()
    except CellExecutionError as exc:
        collector = nb.cells.pop()
        if not any(o.get("output_type") == "error" for o in collector.get("outputs", [])):
            nbformat.write(nb, output)
            print(
                f"FAILED: a cell raised; executed notebook written to {output}\n{exc}",
                file=sys.stderr,
            )
            return 1
        # Only the figures' collection failed: the notebook ran. Its figure widgets are saved
        # as they were displayed. (nbclient saves the widgets' state only after a run without
        # error: here it is saved now.)
        print(f"note: the figures could not be read from the kernel ({exc.ename})", file=sys.stderr)
        assert client is not None
        client.set_widgets_metadata()
        nb.cells.append(collector)
    make_static(nb, collected(nb.cells.pop()))
    nbformat.write(nb, output)
    print(f"done in {time.perf_counter() - started:.1f}s; executed notebook: {output}")
    last = nb.cells[-1]
    for out in last.get("outputs", []):
        if out.get("output_type") == "stream":
            print(out["text"].rstrip("\n"))
    return 0


def _unix_sockets(folder: Path) -> Config:
    """Configuration for a kernel that talks over Unix sockets in a private folder, where
    there are such: no TCP ports open on the machine, and no warning about unencrypted TCP.
    (The client still creates, and so shuts down, the kernel itself.)"""
    from traitlets.config import Config

    config = Config()
    # A Unix socket's path holds about 100 bytes ("kernel-12" is appended): else, TCP.
    if os.name == "posix" and len(str(folder / "kernel-00000")) < 100:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(folder / "kernel")
    return config


if __name__ == "__main__":
    sys.exit(main())
