"""What differs between two runs: params, metrics, the code that ran, the packages.

Code cells are aligned by content (difflib over the two runs' executed cells), so an inserted
cell shows as added rather than shifting every cell after it; cells that changed get a unified
diff each.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass, field
from typing import Any

from .capture import load_snapshot

__all__ = ["RunDiff", "diff_runs"]

_HISTORY = "\0history"  # marks a cell list as an executed history, whose last cell is the run's


@dataclass
class RunDiff:
    """The differences between run ``a`` and run ``b``; prints as text, renders as HTML."""

    a: str
    b: str
    a_name: str
    b_name: str
    params_added: dict[str, str] = field(default_factory=dict)
    params_removed: dict[str, str] = field(default_factory=dict)
    params_changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    metrics: dict[str, tuple[float | None, float | None, float | None]] = field(
        default_factory=dict
    )
    cells_added: list[str] = field(default_factory=list)
    cells_removed: list[str] = field(default_factory=list)
    cells_changed: list[str] = field(default_factory=list)  # unified diffs
    packages: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    code_compared: bool = True  # False when a run has no code snapshot
    packages_compared: bool = True  # False when a run has no environment snapshot
    notes: list[str] = field(default_factory=list)

    @property
    def same_code(self) -> bool:
        """Whether both runs ran the same code (False when it could not be compared)."""
        compared = self.code_compared
        return compared and not (self.cells_added or self.cells_removed or self.cells_changed)

    def _sections(self) -> list[tuple[str, list[str]]]:
        params = [f"+ {k} = {v}" for k, v in sorted(self.params_added.items())]
        params += [f"- {k} = {v}" for k, v in sorted(self.params_removed.items())]
        params += [f"~ {k}: {x} -> {y}" for k, (x, y) in sorted(self.params_changed.items())]
        metrics = []
        for k, (x, y, d) in sorted(self.metrics.items()):
            delta = "" if d is None else f"  ({d:+.6g})"
            metrics.append(f"  {k}: {_num(x)} -> {_num(y)}{delta}")
        code = [f"+ cell added:\n{_indent(c)}" for c in self.cells_added]
        code += [f"- cell removed:\n{_indent(c)}" for c in self.cells_removed]
        code += self.cells_changed
        packages = [
            f"  {k}: {x or '-'} -> {y or '-'}" for k, (x, y) in sorted(self.packages.items())
        ]
        if not self.code_compared:
            code = ["  not compared (see the notes)"]
        if not self.packages_compared:
            packages = ["  not compared (see the notes)"]
        return [
            ("params", params),
            ("metrics", metrics),
            ("code", code),
            ("packages", packages),
            ("notes", self.notes),
        ]

    def __str__(self) -> str:
        out = [f"diff {self.a_name} ({self.a[:8]}) -> {self.b_name} ({self.b[:8]})"]
        for title, lines in self._sections():
            if title == "notes" and not lines:
                continue
            out.append(f"\n{title}:" + ("" if lines else " no differences"))
            out += lines
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        parts = [
            f"<div style='font-size:12px'><b>{html.escape(self.a_name)}</b> "
            f"<code>{self.a[:8]}</code> &rarr; <b>{html.escape(self.b_name)}</b> "
            f"<code>{self.b[:8]}</code>"
        ]
        for title, lines in self._sections():
            if title == "notes" and not lines:
                continue
            parts.append(f"<h4 style='margin:8px 0 2px'>{title}</h4>")
            if not lines:
                parts.append("<div style='color:#57606a'>no differences</div>")
                continue
            body = "\n".join(lines)
            coloured = "\n".join(_colour(line) for line in html.escape(body).split("\n"))
            parts.append(f"<pre style='margin:0;font-size:11px'>{coloured}</pre>")
        return "".join(parts) + "</div>"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _colour(line: str) -> str:
    if line.startswith("+"):
        return f"<span style='color:#1a7f37'>{line}</span>"
    if line.startswith("-"):
        return f"<span style='color:#cf222e'>{line}</span>"
    if line.startswith("@@"):
        return f"<span style='color:#8250df'>{line}</span>"
    return line


def _cells(client: Any, run_id: str) -> list[str] | None:
    history = load_snapshot(client, run_id, "history")
    if history is not None:
        return [c["source"] for c in history["cells"]] + [_HISTORY]
    notebook = load_snapshot(client, run_id, "notebook")
    if notebook is not None:
        import nbformat

        nb = nbformat.reads(notebook, as_version=4)
        return [c.source for c in nb.cells if c.cell_type == "code"]
    script = load_snapshot(client, run_id, "script")
    return None if script is None else [script]


def diff_runs(client: Any, a: str, b: str) -> RunDiff:
    """Compare run ``a`` with run ``b`` (``b``'s values are the new ones)."""
    run_a, run_b = client.get_run(a), client.get_run(b)
    d = RunDiff(
        a=run_a.info.run_id,
        b=run_b.info.run_id,
        a_name=run_a.info.run_name or "",
        b_name=run_b.info.run_name or "",
    )
    pa, pb = run_a.data.params, run_b.data.params
    d.params_added = {k: pb[k] for k in pb.keys() - pa.keys()}
    d.params_removed = {k: pa[k] for k in pa.keys() - pb.keys()}
    d.params_changed = {k: (pa[k], pb[k]) for k in pa.keys() & pb.keys() if pa[k] != pb[k]}
    ma, mb = run_a.data.metrics, run_b.data.metrics
    for k in ma.keys() | mb.keys():
        x, y = ma.get(k), mb.get(k)
        d.metrics[k] = (x, y, None if x is None or y is None else y - x)
    cells_a, cells_b = _cells(client, d.a), _cells(client, d.b)
    if cells_a is None or cells_b is None:
        missing = [n for n, c in ((d.a_name, cells_a), (d.b_name, cells_b)) if c is None]
        d.notes.append(f"no code snapshot for {', '.join(missing)}: code not compared")
        d.code_compared = False
    elif cells_a[-1:] == cells_b[-1:] == [_HISTORY] and len(cells_a) > 1 and len(cells_b) > 1:
        # Two executed histories: compare the runs' own cells (the last ones) with each other,
        # and what ran before them by alignment.
        own_a, own_b = cells_a[-2], cells_b[-2]
        if own_a != own_b:
            d.cells_changed.append(
                _unified(own_a, own_b, f"{d.a_name} (run cell)", f"{d.b_name} (run cell)")
            )
        _diff_cells(d, cells_a[:-2], cells_b[:-2])
    else:
        _diff_cells(d, [c for c in cells_a if c != _HISTORY], [c for c in cells_b if c != _HISTORY])
    env_a = load_snapshot(client, d.a, "environment") or {}
    env_b = load_snapshot(client, d.b, "environment") or {}
    if not (env_a and env_b):  # one side unknown: every package would look added or removed
        lacking = [name for name, env in ((d.a_name, env_a), (d.b_name, env_b)) if not env]
        d.notes.append(f"no environment snapshot for {', '.join(lacking)}: packages not compared")
        d.packages_compared = False
        return d
    pk_a, pk_b = env_a.get("packages", {}), env_b.get("packages", {})
    d.packages = {
        k: (pk_a.get(k), pk_b.get(k))
        for k in pk_a.keys() | pk_b.keys()
        if pk_a.get(k) != pk_b.get(k)
    }
    if env_a.get("python") != env_b.get("python"):
        d.packages["python"] = (env_a.get("python"), env_b.get("python"))
    return d


def _diff_cells(d: RunDiff, cells_a: list[str], cells_b: list[str]) -> None:
    matcher = difflib.SequenceMatcher(a=cells_a, b=cells_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        old, new = cells_a[i1:i2], cells_b[j1:j2]
        pairs = min(len(old), len(new)) if op == "replace" else 0
        for k in range(pairs):
            d.cells_changed.append(
                _unified(
                    old[k], new[k], f"{d.a_name} cell {i1 + k + 1}", f"{d.b_name} cell {j1 + k + 1}"
                )
            )
        d.cells_removed += old[pairs:]
        d.cells_added += new[pairs:]


def _unified(old: str, new: str, from_label: str, to_label: str) -> str:
    return "\n".join(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), fromfile=from_label, tofile=to_label, lineterm=""
        )
    )
