"""A run's snapshot exported as a notebook that reproduces it.

The notebook holds, in order: a markdown cell with the run's metadata (experiment, run id, start,
params, final metrics, environment, how to reproduce); a parameters cell tagged ``parameters``
(as papermill expects) assigning the run's params; then the code cells that ran, from the
executed history (``kind="history"``, the default) or from the notebook file
(``kind="notebook"``). In those cells, the literal assignments that the parameters cell now
provides are commented out, so papermill's overrides take effect; in a history, the ``%%track``
line of an earlier cell is too, so that re-running it makes one run. Beside it,
``requirements.txt`` (or ``<notebook stem>.requirements.txt``: see ``requirements_path``) pins
the packages of the run's environment (see ``requirements_text``); the metadata cell names the
file written. The notebook
is validated against nbformat v4 before it is written.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError
from ..file_modes import file_mode
from .capture import load_snapshot

__all__ = ["export_snapshot", "param_source"]

KINDS = ("history", "notebook", "script")  # in order of preference


def parameters_cell(params: dict[str, str], not_assigned: dict[str, str] | None = None) -> str:
    """The ``parameters`` cell: one assignment per param whose key is a Python identifier; the
    others (``model/lr``, ``batch size``) in a ``params`` dict. ``not_assigned``: params the
    code never assigns as literals, listed in a comment, as setting them would change nothing."""
    lines = [param_source(k, v) for k, v in sorted(params.items()) if _identifier(k)]
    others = {k: v for k, v in sorted(params.items()) if not _identifier(k)}
    if others:
        lines.append("params = {")
        lines += [f"    {k!r}: {_literal_source(v)}," for k, v in others.items()]
        lines.append("}")
    if not_assigned:
        lines.append(
            "# Logged too, but not assigned as literals by the code "
            "(overriding them has no effect):"
        )
        lines += [f"#   {_listed(k, v)}" for k, v in sorted(not_assigned.items())]
    return "\n".join(lines) or "# (this run has no params)"


def _literal_source(value: str) -> str:
    return param_source("_", value)[4:]


def _listed(key: str, value: str) -> str:
    return param_source(key, value) if _identifier(key) else f"{key!r}: {_literal_source(value)}"


def _identifier(key: str) -> bool:
    return key.isidentifier() and not keyword.iskeyword(key)


# Cell magics whose body is Python that the kernel runs in the notebook's namespace; the body
# of any other (%%writefile, %%bash, %%html) is left as it is.
PYTHON_CELL_MAGICS = ("%%track", "%%time", "%%capture")
DEFERRED = "  # set in the parameters cell"


def defer_to_parameters(source: str, params: dict[str, str]) -> str:
    """One cell with its literal assignments of params commented out (see ``defer_cells``)."""
    return defer_cells([source], params)[0][0]


def defer_cells(sources: list[str], params: dict[str, str]) -> tuple[list[str], list[str]]:
    """The cells replayed after the ``parameters`` cell, with their top-level literal
    assignments of params commented out, so that the values come from the ``parameters`` cell
    (and papermill's overrides take effect) in every cell, not only in the run's own.

    A param is deferred when the last literal assigned to it in the cells is the value the run
    logged: one computed after it (``lr = lr * 2``) would be computed from the override, so it
    is left as it ran. So is a statement that also assigns a name that is not deferred
    (``a = b = 1``). Returns the cells and the names deferred, in the order first met.
    """
    bodies = [_python_body(source) for source in sources]
    assignments = [
        (i, node, names, all(params.get(n) == str(value) for n in names))
        for i, body in enumerate(bodies)
        if body is not None
        for node, (names, value) in _literal_assignments(body[1])
    ]
    last = {n: matches for _, _, names, matches in assignments for n in names}
    deferred = {n for n, matches in last.items() if matches}
    changed = True
    while changed:  # a statement left as it ran takes its names out of the deferred ones
        kept = [set(names) for _, _, names, _ in assignments if not set(names) <= deferred]
        changed = any(names & deferred for names in kept)
        deferred -= set().union(*kept)
    out = list(sources)
    order: list[str] = []
    for i, body in enumerate(bodies):
        if body is None:
            continue
        head, _ = body
        lines = out[i].split("\n")
        here: list[str] = []
        for _, node, names, _ in (a for a in assignments if a[0] == i):
            if not set(names) <= deferred or node.end_lineno is None:
                continue
            here += [n for n in names if n not in here]
            for k in range(node.lineno - 1 + head, node.end_lineno + head):
                lines[k] = "# " + lines[k] + (DEFERRED if k == node.lineno - 1 + head else "")
        if here and head:
            lines[0] = _track_params(lines[0], here)
        order += [n for n in here if n not in order]
        out[i] = "\n".join(lines)
    return out, order


#: Ends the commented ``%%track`` line of an earlier cell in a history export.
UNTRACKED = "  # made another run: not tracked again here"


def _untracked(source: str) -> str:
    """An earlier ``%%track`` cell of a history export, as plain code: re-running the export
    makes one run, the one exported (the cell's code still runs, for what later cells use)."""
    if not source.startswith("%%track"):
        return source
    magic, newline, body = source.partition("\n")
    return "# " + magic + UNTRACKED + newline + body


def _python_body(source: str) -> tuple[int, ast.Module] | None:
    """``(lines before the body, the parsed body)`` of a cell whose body is Python (plain, or
    under one of ``PYTHON_CELL_MAGICS``), read as IPython runs it: a line magic or a shell
    escape (``%matplotlib inline``, ``!ls``, ``x = !ls``) is a call on its own line. None for
    another cell magic, or a body that is not Python even so: such a cell is left as it ran."""
    from ..cellvars import _parse

    lines = source.split("\n")
    head = 1 if lines and lines[0].startswith("%%") else 0
    if head and (lines[0].split() or [""])[0] not in PYTHON_CELL_MAGICS:
        return None
    body = "\n".join(lines[head:])
    tree = _parse(body)
    if tree is None:
        python = _as_ipython_runs_it(body)
        tree = None if python is None else _parse(python)
    return None if tree is None else (head, tree)


def _as_ipython_runs_it(body: str) -> str | None:
    """The Python IPython makes of a cell body, if it keeps every statement on its line (the
    positions of the assignments deferred are those of the cell); else None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        python = TransformerManager().transform_cell(body)
    except Exception:  # not even IPython reads it
        return None
    same_lines = python.rstrip("\n").count("\n") == body.rstrip("\n").count("\n")
    return python if same_lines else None


def _literal_assignments(tree: ast.Module) -> list[tuple[ast.stmt, tuple[list[str], Any]]]:
    from ..cellvars import _literal_assignment

    found = [(node, _literal_assignment(node)) for node in tree.body]
    return [(node, literal) for node, literal in found if literal is not None]


def _track_params(magic: str, names: list[str]) -> str:
    """A ``%%track`` line that also logs ``names`` from the variables: the cell no longer
    assigns them, so %%track would not see them as params."""
    if not magic.startswith("%%track"):
        return magic
    given = re.search(r"--params[ =](\S+)", magic)
    if given is None:
        return magic + " --params " + ",".join(names)
    listed = given.group(1).split(",")
    merged = listed + [n for n in names if n not in listed]
    return magic[: given.start(1)] + ",".join(merged) + magic[given.end(1) :]


def param_source(name: str, value: str) -> str:
    """``name = <literal>``: the stored string read back as the Python literal it was, when it
    reads as one (``"200"`` -> ``200``, ``"[64, 32]"`` -> a list), else as a string."""
    try:
        literal = ast.literal_eval(value)
        if str(literal) == value:
            return f"{name} = {literal!r}"
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return f"{name} = {value!r}"


def _script_prologue(run: Any) -> str:
    """The cell that gives a script, run in a kernel, its ``__file__`` and a command line of
    its own (the kernel's ``sys.argv`` would make its argparse exit). The arguments it was run
    with are not recorded (they may hold secrets): the cell says where to put them."""
    from ..tracking.context import SOURCE_NAME

    name = run.data.tags.get(SOURCE_NAME, "script.py")
    return (
        "# The script's command line: add the arguments it was run with, if any (they are not\n"
        "# recorded); the parameters cell sets only values the script assigns as literals.\n"
        "import sys\n"
        f"sys.argv = [{name!r}]\n"
        f"__file__ = {name!r}"
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _metadata_markdown(
    run: Any, experiment: str, env: dict[str, Any] | None, kind: str, requirements: str
) -> str:
    """The first cell: the run's metadata, and how to reproduce it with ``requirements`` (the
    name of the requirements file written beside the notebook)."""
    info, data = run.info, run.data
    lines = [
        f"# Run `{info.run_name}`",
        "",
        f"Exported by nbtrack from the **{kind}** snapshot of run `{info.run_id}`.",
        "",
        "| | |",
        "| --- | --- |",
        f"| experiment | {experiment} |",
        f"| run id | `{info.run_id}` |",
        f"| status | {info.status} |",
        f"| started | {_when(info.start_time)} |",
    ]
    if data.params:
        lines.append(
            "| params | " + ", ".join(f"`{k}={v}`" for k, v in sorted(data.params.items())) + " |"
        )
    if data.metrics:
        lines.append(
            "| final metrics | "
            + ", ".join(f"`{k}={v:.6g}`" for k, v in sorted(data.metrics.items()))
            + " |"
        )
    if env:
        git = env.get("git") or {}
        lines.append(f"| python | {env.get('python')} on {env.get('platform')} |")
        if git.get("commit"):
            dirty = " (uncommitted changes)" if git.get("dirty") else ""
            lines.append(f"| git | `{git['commit'][:12]}` on {git.get('branch')}{dirty} |")
        pinned, local = pins(env)
        shown = f"{len(pinned)} pinned in {requirements}"
        if local:
            shown += f"; not pinned, installed from local paths: {', '.join(local)}"
        lines.append(f"| packages | {shown} |")
    lines += [
        "",
        f"**To reproduce**: `pip install -r {requirements}`, then run all cells. The next cell",
        "holds the run's params and is tagged `parameters`, so papermill can override them.",
    ]
    return "\n".join(lines)


def export_snapshot(
    client: Any, run_id: str, path: str | os.PathLike[str], kind: str | None = None
) -> Path:
    """Write the run's snapshot as a notebook at ``path`` (and its requirements beside it: see
    ``requirements_path``).

    ``kind``: ``"history"``, ``"notebook"`` or ``"script"``; None takes the first of them the
    run has. Returns the notebook's path. Raises InvalidInputError for an unknown ``kind`` and
    NotFoundError when the run has no snapshot of that kind.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    out = Path(path)
    if out.suffix != ".ipynb":
        raise InvalidInputError(f"the export path must end in .ipynb; got {str(out)!r}")
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    available = client.store.run_snapshots(run.info.run_id)
    if kind is None:
        kind = next((k for k in KINDS if k in available), KINDS[0])
    snapshot = load_snapshot(client, run.info.run_id, kind)
    if snapshot is None:
        raise NotFoundError(
            f"run {run.info.run_id} has no {kind} snapshot (it has: "
            f"{', '.join(sorted(available)) or 'none'})"
        )
    env = load_snapshot(client, run.info.run_id, "environment")
    if kind == "history":
        history = snapshot["cells"]
        sources = [c["source"] for c in history]
        failed = [bool(c.get("error")) for c in history]
        if history and run.info.status == "FAILED":
            failed[-1] = True  # the run's own cell raised (its outcome came after the snapshot)
        sources[:-1] = [_untracked(source) for source in sources[:-1]]
        metadata: dict[str, Any] = {}
    elif kind == "script":  # the script as one cell, after one giving it its command line
        sources = [_script_prologue(run), str(snapshot)]
        failed, metadata = [False, run.info.status == "FAILED"], {}
    else:
        original = nbformat.reads(snapshot, as_version=4)
        sources = [c.source for c in original.cells if c.cell_type == "code"]
        failed = [False] * len(sources)
        metadata = dict(original.metadata)
    requirements = requirements_path(out, run.info.run_id)
    cells = [new_markdown_cell(_metadata_markdown(run, experiment, env, kind, requirements.name))]
    params = run.data.params
    first = 1 if kind == "script" else 0  # the command line's cell is nbtrack's own
    sources[first:], deferred = defer_cells(sources[first:], params)
    # Only what the code assigns as literals: setting the others would change nothing.
    not_assigned = {k: v for k, v in params.items() if k not in deferred}
    params = {k: v for k, v in params.items() if k in deferred}
    cells.append(
        new_code_cell(parameters_cell(params, not_assigned), metadata={"tags": ["parameters"]})
    )
    # A cell that raised when the run was made is tagged so that running the export goes on
    # past it (nbclient and papermill honour the `raises-exception` tag).
    cells += [
        new_code_cell(src, metadata={"tags": ["raises-exception"]} if bad else {})
        for src, bad in zip(sources, failed, strict=True)
        if src.strip()
    ]
    metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    metadata["nbtrack"] = {"run_id": run.info.run_id, "kind": kind}
    nb = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, nbformat.writes(nb))
    _write_atomic(requirements, requirements_text(run.info.run_id, env or {}))
    return out


REQUIREMENTS_HEADER = "# pinned by nbtrack from the environment of run"
#: Not pinned, as ``pip freeze`` leaves them out: the installer's own tools.
INSTALLERS = frozenset({"pip", "setuptools", "wheel", "distribute"})


def pins(env: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """``(name -> version pinned, names left out)`` for an environment snapshot: every
    package but the installer's tools and those installed from a local path (a checkout
    installed editable, a folder, a wheel file: no index has them). A snapshot taken before
    nbtrack recorded local installs pins those too."""
    local = {name.lower() for name in env.get("local_packages", {})}
    pinned, left_out = {}, []
    for name, version in sorted(env.get("packages", {}).items()):
        if name.lower() in local:
            left_out.append(name)
        elif name.lower() not in INSTALLERS:
            pinned[name] = version
    return pinned, left_out


def requirements_text(run_id: str, env: dict[str, Any]) -> str:
    """The requirements file of a run's export: its header (which ``requirements_path``
    reads), a comment naming the packages left out as installed from local paths, then the
    pins; a version with a local label (``2.13.0+cpu``) is pinned after a comment saying that
    PyPI does not have it."""
    pinned, local = pins(env)
    lines = [f"{REQUIREMENTS_HEADER} {run_id}"]
    if local:
        lines.append(
            "# not pinned, installed from local paths (install them from their source): "
            + ", ".join(local)
        )
    for name, version in pinned.items():
        if "+" in version:
            lines.append(
                f"# {name} {version}: a local version (+{version.partition('+')[2]}), from "
                "another index than PyPI (give pip that index: --extra-index-url URL)"
            )
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def requirements_path(notebook: Path, run_id: str) -> Path:
    """``requirements.txt`` beside the notebook, unless a file of that name exists that nbtrack
    did not write for this run (a project's own, or the pins of another run's export in the
    same folder): then ``<notebook stem>.requirements.txt``."""
    plain = notebook.parent / "requirements.txt"
    try:
        with plain.open(encoding="utf-8") as fh:
            ours = fh.readline().rstrip("\r\n") == f"{REQUIREMENTS_HEADER} {run_id}"
    except FileNotFoundError:
        return plain
    except (OSError, UnicodeDecodeError):
        ours = False
    return plain if ours else notebook.with_name(f"{notebook.stem}.requirements.txt")


def _write_atomic(path: Path, text: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:  # named after the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
