"""What a ``%%track`` cell's variables give as params and metrics.

Params: top-level assignments of literal constants in the cell source, except numbers assigned
to names that look like metrics (``acc = 0.5`` is a metric; ``use_focal_loss = True`` is a
param) and names the cell also binds in another way (``w = 0.0`` then ``w += lr``, a walrus,
``del``, an import: state, not a setting): numbers (negative too),
strings, bools, None, and lists, tuples and dicts of those (``n_estimators = 200``,
``layers = [64, 32]``, ``opt: str = "adam"``). They are found by parsing the cell with
:mod:`ast`; nothing is ever evaluated or run twice. When a name is assigned several literals,
the last one counts.

Metrics: after the cell, the names it assigned at top level whose values are real scalars
(Python or NumPy numbers, 0-d arrays or tensors; not bools) and whose names match one of
``METRIC_PATTERNS`` (shell-style, case-insensitive).
"""

from __future__ import annotations

import ast
import fnmatch
import numbers
import warnings
from typing import Any

__all__ = ["METRIC_PATTERNS", "assigned_names", "literal_params", "looks_like_metric", "scalar"]

#: Default name patterns for automatic metrics (``%config TrackMagics.metric_patterns`` overrides).
METRIC_PATTERNS = (
    "acc", "acc_*", "*_acc", "accuracy*", "*_accuracy*",
    "*loss*",
    "*score*",
    "f1*", "*_f1*",
    "auc*", "*_auc*", "roc_auc*",
    "rmse*", "*_rmse", "mae*", "*_mae", "mse*", "*_mse", "mape*", "*_mape",
    "r2*", "*_r2",
    "precision*", "*_precision", "recall*", "*_recall",
    "*error*", "*err",
    "logloss*", "perplexity*", "bleu*", "rouge*", "iou*", "*_iou", "map*", "ndcg*",
)


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for elt in node.elts for n in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            # `x is 1`, "\d": the cell's own compilation warns the user once; we stay quiet
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None  # not Python (IPython syntax, a typo), or too deeply nested to parse


def literal_params(source: str) -> dict[str, Any]:
    """``name -> value`` of the top-level literal assignments in ``source``."""
    tree = _parse(source)
    params: dict[str, Any] = {}
    if tree is None:
        return params
    # names the cell also binds some other way: state, not settings
    rebound: set[str] = _other_bindings(tree)
    for node in tree.body:
        literal = _literal_assignment(node)
        if literal is None:
            rebound.update(_bound(node))
            continue
        names, value = literal
        for name in names:
            params[name] = value
    return {k: v for k, v in params.items() if k not in rebound}


def _other_bindings(tree: ast.Module) -> set[str]:
    """Module-scope names bound by walrus, ``del``, ``import``, ``def`` or ``class`` anywhere in
    the cell outside function and class bodies."""
    names: set[str] = set()
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.NamedExpr):
            names.update(_targets(node.target))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                names.update(_targets(target))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # their bodies are another scope
        if isinstance(node, ast.Lambda):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return names


def _literal_assignment(node: ast.stmt) -> tuple[list[str], Any] | None:
    """``(names, value)`` if ``node`` assigns a plain literal to plain names only."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    else:
        return None
    if not all(isinstance(t, ast.Name) for t in targets) or node.value is None:
        return None
    try:
        literal = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not _plain(literal):
        return None
    return [t.id for t in targets if isinstance(t, ast.Name)], literal


def _plain(value: Any) -> bool:
    """Numbers, strings, bools, None and lists/tuples/dicts of them (no bytes, sets, complex)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _bound(node: ast.stmt) -> list[str]:
    """Names a statement binds in the module's scope: its own targets, then those of the
    statements in its blocks (``for``, ``while``, ``if``, ``with``, ``try``), never those inside
    a ``def`` or ``class`` (they bind local or class names)."""
    found: list[str] = []
    if isinstance(node, ast.Assign):
        for target in node.targets:
            found += _targets(target)
    elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)) or (
        isinstance(node, ast.AnnAssign) and node.value is not None  # `x: int` binds nothing
    ):
        found += _targets(node.target)
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            if item.optional_vars is not None:
                found += _targets(item.optional_vars)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return found
    blocks: list[list[ast.stmt]] = [getattr(node, "body", None) or []]
    blocks += [h.body for h in getattr(node, "handlers", None) or []]  # try/except
    blocks += [c.body for c in getattr(node, "cases", None) or []]  # match/case
    blocks += [getattr(node, "orelse", None) or [], getattr(node, "finalbody", None) or []]
    for block in blocks:
        for inner in block:
            if isinstance(inner, ast.stmt):
                found += _bound(inner)
    return found


def assigned_names(source: str) -> list[str]:
    """Names bound at the top level of ``source`` (assignments, augmented and annotated ones,
    for-loop and with targets, also inside top-level ``for``/``while``/``if``/``with``/``try``
    blocks; not inside ``def`` or ``class``), in order of first appearance."""
    tree = _parse(source)
    if tree is None:
        return []
    names: list[str] = []
    for node in tree.body:
        names += [n for n in _bound(node) if n not in names]
    return names


def looks_like_metric(name: str, patterns: tuple[str, ...] | list[str] = METRIC_PATTERNS) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def scalar(value: Any) -> float | None:
    """The float of a real scalar value (not a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None
