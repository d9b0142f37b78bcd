"""A run's snapshot exported as a notebook that reproduces it.

The notebook holds, in order: a markdown cell with the run's metadata (experiment, run id, start,
params, final metrics, environment, how to reproduce); then the code cells that ran, from the
executed history (``kind="history"``, the default), from the notebook file (``kind="notebook"``)
or the script, with a parameters cell tagged ``parameters`` (as papermill expects) just before
the run's own cell, assigning the run's params. The cells before it replay as they ran; in the
run's own cell, the literal assignments that the parameters cell now provides are commented out,
so papermill's overrides take effect (see ``defer_cells``); in a history, the ``%%track`` line of
an earlier cell is too, so that re-running it makes one run. Beside it, ``requirements.txt`` (or
``<notebook stem>.requirements.txt``: see ``requirements_path``) pins the packages of the run's
environment (see ``requirements_text``); the metadata cell names the file written. The notebook
is validated against nbformat v4 before it is written.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError
from ..file_modes import file_mode
from .capture import load_snapshot

__all__ = ["export_snapshot", "param_source"]

KINDS = ("history", "notebook", "script")  # in order of preference


def parameters_cell(
    params: dict[str, str],
    not_assigned: dict[str, str] | None = None,
    literals: dict[str, str] | None = None,
) -> str:
    """The ``parameters`` cell: one assignment per param whose key is a Python identifier; the
    others (``model/lr``, ``batch size``) in a ``params`` dict. ``literals``: the source text
    of the literal the code assigned to a param (``'2'`` stays a string, ``1e-3`` as written);
    a param without one is read back from its logged string (see ``param_source``).
    ``not_assigned``: params the code never assigns as literals, listed in a comment, as
    setting them would change nothing."""
    literals = literals or {}
    lines = [
        f"{k} = {literals[k]}" if k in literals else param_source(k, v)
        for k, v in sorted(params.items())
        if _identifier(k)
    ]
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
    """One cell, the run's own, with its literal assignments of params commented out (see
    ``defer_cells``)."""
    return defer_cells([source], params)[0][0]


def defer_cells(
    sources: list[str], params: dict[str, str], own: int | None = None
) -> tuple[list[str], dict[str, str]]:
    """The cells of an export, the run's own (``sources[own]``, default the last) made ready
    for the ``parameters`` cell that goes just before it.

    The cells before the run's own are left as they ran: what they compute (data shuffled
    with an earlier seed, say) is computed as it was. In the run's own cell, the top-level
    literal assignments of params are commented out (those statements only: another one on
    the same line stays), so that the values come from the ``parameters`` cell, and papermill's
    overrides take effect. A param is taken out of the cell only when the last literal the
    cell assigns it is the value the run logged, nothing in the cell reads it before that
    literal, and the cell binds it in no other way (``w = 0.0`` then ``w += lr``: state); then
    every literal assignment of it goes, the earlier ones unread. A statement that also
    assigns a name not taken out (``a = b = 1``) is left as it ran. A param that the run's own
    cell does not bind at all is set by the ``parameters`` cell too when the last thing the
    earlier cells bound it to is a literal of its logged value (``lr = 0.1`` in a cell above
    a ``with nbtrack.start_run():`` cell that logs it): setting it again there changes
    nothing, and an override reaches the run's cell.

    Returns the cells and, for each param the ``parameters`` cell sets, the source text of the
    literal the code assigned to it, in the order first met (the run's own cell first).
    """
    out = list(sources)
    if not sources:
        return out, {}
    own = len(sources) - 1 if own is None else own
    earlier = _earlier_literals(sources[:own], params)
    body = _python_body(sources[own])
    if body is None:  # another cell magic, or not even IPython reads it: left as it ran
        return out, earlier
    texts, statements = _own_literals(body, params)
    if statements:
        cell = _without(sources[own], body, statements)
        if cell is None:  # the statements did not come out cleanly: the cell is left as it ran
            texts = {}
        else:
            if body.head:
                lines = cell.split("\n")
                lines[body.head - 1] = _track_params(lines[body.head - 1], list(texts))
                cell = "\n".join(lines)
            out[own] = cell
    bound = _bound_names(body.tree.body)
    texts.update({n: t for n, t in earlier.items() if n not in bound and n not in texts})
    return out, texts


@dataclass
class _Body:
    """The Python of a cell: ``tree`` parsed from ``text``, which stands for the cell's lines
    from ``head`` on (those after its cell magic, if any) line for line; ``lines`` are those
    lines as the cell has them (``text`` differs where IPython syntax was made Python)."""

    head: int
    tree: ast.Module
    text: str
    lines: list[str]

    def as_written(self, first: int, last: int) -> bool:
        """Lines ``first`` to ``last`` (1-based, of the body) were parsed as the cell has
        them, so that positions in them are positions in the cell."""
        parsed = self.text.split("\n")
        return all(
            k < len(parsed) and k < len(self.lines) and parsed[k] == self.lines[k]
            for k in range(first - 1, last)
        )


def _earlier_literals(sources: list[str], params: dict[str, str]) -> dict[str, str]:
    """``name -> literal source`` for the params whose last binding in ``sources`` (the cells
    before the run's own) is a literal assignment of the value the run logged."""
    last: dict[str, str | None] = {}
    for source in sources:
        body = _python_body(source)
        if body is None:
            continue  # not Python the kernel runs in the namespace (%%bash, %%writefile)
        for node in body.tree.body:
            literal = _literal_assignment(node)
            if literal is None:
                last.update(dict.fromkeys(_bound_names([node])))
                continue
            names, value = literal
            text = _literal_text(body, node, value)
            last.update({n: text if params.get(n) == str(value) else None for n in names})
    return {n: text for n, text in last.items() if text is not None}


def _own_literals(body: _Body, params: dict[str, str]) -> tuple[dict[str, str], list[ast.stmt]]:
    """The literal assignments of params that can come out of the run's own cell (see
    ``defer_cells``): ``name -> literal source`` in the order first met, and the statements
    to take out."""
    found: list[tuple[ast.stmt, list[str]]] = []
    texts: dict[str, str] = {}  # the last literal of each name (the one the run logged)
    matches: dict[str, bool] = {}
    movable: dict[str, bool] = {}
    read: set[str] = set()  # the names read so far, top to bottom
    for node in body.tree.body:
        literal = _literal_assignment(node)
        if literal is None:
            read |= _read_names(node)
            movable.update(dict.fromkeys(_bound_names([node]), False))
            continue
        names, value = literal
        for name in names:
            # read before a literal assignment: the value it had then mattered
            ok = name not in read and _removable(body, node)
            movable[name] = movable.get(name, True) and ok
            matches[name] = params.get(name) == str(value)
            texts[name] = _literal_text(body, node, value)
        found.append((node, names))
    movable.update(dict.fromkeys(_other_bindings(body.tree), False))  # walrus, del, import...
    deferred = {name for name in texts if movable[name] and matches[name]}
    changed = True
    while changed:  # a statement left as it ran keeps all of its names as they ran
        kept = [set(names) for _, names in found if not set(names) <= deferred]
        changed = any(names & deferred for names in kept)
        deferred -= set().union(*kept)
    statements = [node for node, names in found if set(names) <= deferred]
    return {n: t for n, t in texts.items() if n in deferred}, statements


def _literal_text(body: _Body, node: ast.stmt, value: Any) -> str:
    """The literal ``node`` assigns, as the code wrote it (``1e-3``, ``'2'``: its type as it
    was, not read back from the logged string), in parentheses when it spans lines."""
    segment = ast.get_source_segment(body.text, getattr(node, "value", node))
    if segment is None:
        return repr(value)
    return f"({segment})" if "\n" in segment else segment


def _removable(body: _Body, node: ast.stmt) -> bool:
    """``node`` can be taken out of the cell by its position: on lines parsed as written, and
    alone on its lines if it spans several (``x = [\\n 1]; y = 2`` stays whole)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return False
    if not body.as_written(node.lineno, node.end_lineno):
        return False
    first, last = body.lines[node.lineno - 1], body.lines[node.end_lineno - 1]
    if last.rstrip().endswith("\\"):
        return False  # a line continued: a comment cannot be put at its end
    if node.lineno == node.end_lineno:
        return True
    before = first[: _chars(first, node.col_offset)]
    after = last[_chars(last, node.end_col_offset) :]
    return not before.strip() and re.fullmatch(r"\s*;?\s*(#.*)?", after) is not None


def _without(source: str, body: _Body, statements: list[ast.stmt]) -> str | None:
    """``source`` with ``statements`` (of ``body``) commented out: a line holding nothing else
    is commented out whole; from a line holding other statements too, only the statement (and
    the ``;`` joining it to them) goes, to a comment at the end of the line. None if the cell
    would no longer parse."""
    lines = source.split("\n")
    spans: dict[int, list[tuple[int, int]]] = {}  # line of the cell -> (start, end) columns
    for node in statements:
        assert node.end_lineno is not None and node.end_col_offset is not None
        first, last = node.lineno - 1 + body.head, node.end_lineno - 1 + body.head
        if first != last:  # alone on its lines (see _removable)
            for k in range(first, last + 1):
                lines[k] = "# " + lines[k] + (DEFERRED if k == first else "")
            continue
        line = lines[first]
        start, end = _chars(line, node.col_offset), _chars(line, node.end_col_offset)
        spans.setdefault(first, []).append((start, end))
    for k, found in spans.items():
        line = rest = lines[k]
        removed: list[str] = []
        for start, end in sorted(found, reverse=True):  # from the right: the others keep place
            removed.insert(0, line[start:end])
            after = re.match(r"[ \t]*;[ \t]*", rest[end:])
            before = re.search(r"[ \t]*;[ \t]*$", rest[:start])
            if after:
                rest = rest[:start] + rest[end + after.end() :]
            else:
                rest = rest[: before.start() if before else start] + rest[end:]
        if not rest.strip() or rest.lstrip().startswith("#"):
            lines[k] = "# " + line + DEFERRED
        else:
            lines[k] = rest.rstrip() + "  # " + "; ".join(removed) + DEFERRED
    cell = "\n".join(lines)
    return cell if _python_body(cell) is not None else None


def _chars(line: str, offset: int) -> int:
    """The character column of ``offset``, a column in UTF-8 bytes as ``ast`` gives them."""
    return len(line.encode("utf-8")[:offset].decode("utf-8", errors="replace"))


def _read_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _bound_names(statements: list[ast.stmt]) -> set[str]:
    """The names ``statements`` bind at module scope, in any way."""
    from ..cellvars import _bound

    tree = ast.Module(body=statements, type_ignores=[])
    return {n for node in statements for n in _bound(node)} | _other_bindings(tree)


def _other_bindings(tree: ast.Module) -> set[str]:
    from ..cellvars import _other_bindings as bindings

    return bindings(tree)


def _magic_line(lines: list[str]) -> int | None:
    """The index of a cell's cell magic line: its first line that is not blank, if it starts
    with ``%%`` (IPython skips leading blank lines and indentation to find it)."""
    for k, line in enumerate(lines):
        if line.strip():
            return k if line.lstrip().startswith("%%") else None
    return None


def _magic_name(line: str) -> str:
    return (line.split() or [""])[0]


def _untracked(source: str) -> str:
    """An earlier ``%%track`` cell of a history export, replayed (``%%track --replay``): its
    code runs as it did, for what later cells use, but it makes no run and its tracking calls
    (``log_metric`` in its loop) are thrown away, so that re-running the export makes the run
    exported, not one more per tracked cell."""
    lines = source.split("\n")
    k = _magic_line(lines)
    if k is None or _magic_name(lines[k]) != "%%track":
        return source
    lines[k] = lines[k].replace("%%track", "%%track --replay", 1)
    return "\n".join(lines)


def _python_body(source: str) -> _Body | None:
    """The Python of a cell whose body is Python (plain, or under one of
    ``PYTHON_CELL_MAGICS``), read as IPython runs it: a line magic or a shell escape
    (``%matplotlib inline``, ``!ls``, ``x = !ls``) is a call on its own line. None for another
    cell magic, or a body that is not Python even so: such a cell is left as it ran."""
    from ..cellvars import _parse

    lines = source.split("\n")
    k = _magic_line(lines)
    if k is not None and _magic_name(lines[k]) not in PYTHON_CELL_MAGICS:
        return None
    head = 0 if k is None else k + 1
    text: str | None = "\n".join(lines[head:])
    assert text is not None
    tree = _parse(text)
    if tree is None:
        text = _as_ipython_runs_it(text)
        tree = None if text is None else _parse(text)
    return None if tree is None or text is None else _Body(head, tree, text, lines[head:])


def _as_ipython_runs_it(body: str) -> str | None:
    """The Python IPython makes of a cell body, if it keeps every statement on its line (the
    positions of the assignments deferred are those of the cell); else None."""
    lines = body.split("\n")
    blank = next((k for k, line in enumerate(lines) if line.strip()), len(lines))
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        # IPython drops the leading blank lines: they are put back, to keep the lines in place
        python = "\n" * blank + TransformerManager().transform_cell("\n".join(lines[blank:]))
    except Exception:  # not even IPython reads it
        return None
    same_lines = python.rstrip("\n").count("\n") == body.rstrip("\n").count("\n")
    return python if same_lines else None


def _literal_assignment(node: ast.stmt) -> tuple[list[str], Any] | None:
    from ..cellvars import _literal_assignment as literal

    return literal(node)


def _track_params(magic: str, names: list[str]) -> str:
    """A ``%%track`` line that also logs ``names`` from the variables: the cell no longer
    assigns them, so %%track would not see them as params."""
    if _magic_name(magic) != "%%track" or not names:
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
    run: Any,
    experiment: str,
    env: dict[str, Any] | None,
    kind: str,
    requirements: str,
    replays: bool = False,
) -> str:
    """The first cell: the run's metadata, and how to reproduce it with ``requirements`` (the
    name of the requirements file written beside the notebook); ``replays``: earlier tracked
    cells run with ``%%track --replay``."""
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
    where = "the script" if kind == "script" else "the cell that made the run"
    lines += [
        "",
        f"**To reproduce**: `pip install -r {requirements}`, then run all cells. The run's params",
        f"are in the cell tagged `parameters`, just before {where}, so that papermill can",
        "override them; the cells above it run as they ran.",
    ]
    if replays:
        lines += [
            "The earlier `%%track` cells, which made other runs, run with `--replay`: as they",
            "ran, but making no run (their tracking calls are thrown away).",
        ]
    return "\n".join(lines)


def _own_cell(sources: list[str], ran: str | None, params: dict[str, str]) -> int:
    """Which of a notebook file's code cells made the run: the last one holding the code of
    the run's own cell in its history (``ran``), else the last one assigning a param the
    literal the run logged, else the last one."""
    if ran is not None and ran.strip():
        for i in reversed(range(len(sources))):
            if sources[i].strip() == ran.strip():
                return i
    for i in reversed(range(len(sources))):
        body = _python_body(sources[i])
        for node in body.tree.body if body is not None else []:
            literal = _literal_assignment(node)
            if literal is not None and any(params.get(n) == str(literal[1]) for n in literal[0]):
                return i
    return max(len(sources) - 1, 0)


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
        replayed = [_untracked(source) for source in sources[:-1]]
        replays = replayed != sources[:-1]
        sources[:-1] = replayed
        own = len(sources) - 1
        metadata: dict[str, Any] = {}
    elif kind == "script":  # the script as one cell, after one giving it its command line
        sources = [_script_prologue(run), str(snapshot)]
        failed, metadata = [False, run.info.status == "FAILED"], {}
        own, replays = 1, False
    else:
        original = nbformat.reads(snapshot, as_version=4)
        sources = [c.source for c in original.cells if c.cell_type == "code"]
        failed = [False] * len(sources)
        metadata = dict(original.metadata)
        executed = (load_snapshot(client, run.info.run_id, "history") or {}).get("cells")
        ran = executed[-1]["source"] if executed else None  # the run's own cell
        own, replays = _own_cell(sources, ran, run.data.params), False
    requirements = requirements_path(out, run.info.run_id)
    markdown = _metadata_markdown(run, experiment, env, kind, requirements.name, replays)
    cells = [new_markdown_cell(markdown)]
    params = run.data.params
    first = 1 if kind == "script" else 0  # the command line's cell is nbtrack's own
    sources[first:], literals = defer_cells(sources[first:], params, own - first)
    # Only what the code assigns as literals: setting the others would change nothing.
    not_assigned = {k: v for k, v in params.items() if k not in literals}
    params = {k: v for k, v in params.items() if k in literals}
    parameters = new_code_cell(
        parameters_cell(params, not_assigned, literals), metadata={"tags": ["parameters"]}
    )
    # A cell that raised when the run was made is tagged so that running the export goes on
    # past it (nbclient and papermill honour the `raises-exception` tag).
    code = [
        new_code_cell(src, metadata={"tags": ["raises-exception"]} if bad else {})
        if src.strip() else None
        for src, bad in zip(sources, failed, strict=True)
    ]
    # The parameters cell goes just before the run's own cell (a script's, before the cell
    # giving it its command line): the cells before it run as they ran.
    at = own if kind != "script" else 0
    cells += [c for c in code[:at] if c] + [parameters] + [c for c in code[at:] if c]
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


def cannot_write(output: str, exc: OSError) -> str:
    """What to say when the export could not be written to ``output`` (a folder that cannot
    be made or written to)."""
    where = f" ({exc.filename})" if exc.filename and exc.filename != output else ""
    return f"cannot write {output}: {exc.strerror or exc}{where}"


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
