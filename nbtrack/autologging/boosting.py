"""What the boosting integrations (XGBoost, LightGBM) share: patching a module's ``train``,
binding its arguments, adding a callback, the run around a training, and logging params, the
data fingerprint and feature importance (tables and a bar chart)."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .patching import Hook, inside, patch
from .scope import fit_run, param_key
from .scope import run_logged as _run_logged

__all__ = [
    "wrapper_classes",
    "argument",
    "settled_by_fit",
    "bind",
    "call_with_callback",
    "importance_figure",
    "input_example",
    "log_importance",
    "log_iteration",
    "metric_key",
    "other_integration_running",
    "patch_train",
    "run_logged",
]

#: Features drawn per importance type in the bar chart.
PLOT_TOP = 20

def patch_train(key: str, module: ModuleType, hook: Hook) -> None:
    """:func:`~nbtrack.autologging.patching.patch` for a module's ``train(params, ...)``.

    The patched wrapper takes its first argument as ``self``; a function called with every
    argument by keyword (``train(params=..., dtrain=...)``) would fail there, so ``params`` is
    passed on by position.
    """
    patch(key, module, "train", hook)
    wrapper = module.__dict__["train"]
    if getattr(wrapper, "__nbtrack_keywords__", False):
        return  # patched already

    @functools.wraps(wrapper)
    def train(*args: Any, **kwargs: Any) -> Any:
        if not args and "params" in kwargs:
            kwargs = dict(kwargs)
            args = (kwargs.pop("params"),)
        if not args:  # no params at all: the library's own error
            return wrapper.__wrapped__(**kwargs)
        return wrapper(*args, **kwargs)

    train.__nbtrack_keywords__ = True  # type: ignore[attr-defined]
    setattr(module, "train", train)  # noqa: B010 (unpatch puts the original back)


def other_integration_running(integration: str) -> bool:
    """True inside another integration's logged fit (a scikit-learn search or pipeline that
    fits a booster): that one logs the training, this one stays out."""
    from . import INTEGRATIONS

    return any(inside(name) for name in INTEGRATIONS if name != integration)


def bind(function: Any, args: tuple, kwargs: dict) -> inspect.BoundArguments | None:
    """The call's arguments by name, or None when they do not fit the signature (the library
    then raises its own error)."""
    try:
        return inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None


def argument(call: inspect.BoundArguments, name: str) -> Any:
    """An argument of ``call``, or its default."""
    if name in call.arguments:
        return call.arguments[name]
    default = call.signature.parameters[name].default
    return None if default is inspect.Parameter.empty else default


def call_with_callback(function: Any, call: inspect.BoundArguments, callback: Any) -> Any:
    """``function`` with ``callback`` added after the caller's own ``callbacks``."""
    if callback is not None:
        call.arguments["callbacks"] = [*(call.arguments.get("callbacks") or ()), callback]
    return function(*call.args, **call.kwargs)


def run_logged(
    integration: str,
    run_name: str,
    start: Callable[[Any, str], Any],
    train: Callable[[Any], Any],
    finish: Callable[[Any, str, Any], None],
) -> Any:
    """Train in the run :func:`~nbtrack.autologging.scope.fit_run` gives (see
    :func:`~nbtrack.autologging.scope.run_logged`): ``start`` returns the metric callback
    that ``train(callback)`` passes on."""
    return _run_logged(integration, fit_run(integration, run_name), train, start, finish)


def settled_by_fit(objective: Any, model: Any) -> dict[str, Any]:
    """The params a wrapper's fit settles, logged after it, as MLflow logs those the fit gave
    the training: the ``objective`` (``multi:softprob`` or ``multiclass`` for three classes, where
    ``get_params()`` says ``binary:logistic`` or None before the fit), and ``num_class`` for more
    than two classes."""
    settled: dict[str, Any] = {"objective": objective}
    classes = getattr(model, "n_classes_", None)
    if isinstance(classes, int) and classes > 2:
        settled["num_class"] = classes
    return settled


def metric_key(data: str, metric: str) -> str:
    """``<data>-<metric>`` with characters a key cannot hold replaced (``@`` by ``_at_``)."""
    return param_key(f"{data}-{metric}".replace("@", "_at_"))


def log_iteration(client: Any, run_id: str, key: str, value: Any, step: int) -> None:
    """One iteration's value of one metric (buffered: microseconds)."""
    client.log_metric(run_id, key, float(value), step=step)


def input_example(data: Any) -> Any:
    """The first 5 rows of an array or DataFrame, saved with the model (None otherwise)."""
    import numpy as np

    if isinstance(data, np.ndarray) and data.ndim == 2:
        return data[:5]
    if type(data).__name__ == "DataFrame" and hasattr(data, "iloc"):
        return data.iloc[:5]
    return None


def log_importance(client: Any, run_id: str, tables: dict[str, dict[str, Any]],
                   library: str) -> None:
    """``feature_importance_<type>.json`` per table, and ``feature_importance.png``."""
    for kind, table in tables.items():
        client.log_dict(run_id, table, f"feature_importance_{kind}.json")
    figure = importance_figure(tables, f"{library} feature importance")
    if figure is not None:
        client.log_figure(run_id, figure, "feature_importance.png")


def importance_figure(tables: dict[str, dict[str, Any]], title: str) -> Any:
    """A matplotlib figure with one bar chart per importance type (the top ``PLOT_TOP``
    features), drawn with Agg, never touching pyplot; None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    drawable = {
        kind: list(table.items())[:PLOT_TOP]
        for kind, table in tables.items()
        if table and all(isinstance(v, (int, float)) for v in table.values())
    }
    if not drawable:
        return None
    tallest = max(len(items) for items in drawable.values())
    figure = Figure(figsize=(4.5 * len(drawable), 1.5 + 0.3 * tallest), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(drawable), squeeze=False)[0]
    for ax, (kind, items) in zip(axes, drawable.items(), strict=True):
        ax.barh([str(name) for name, _ in reversed(items)], [v for _, v in reversed(items)])
        ax.set_title(kind)
        ax.set_xlabel("importance")
    figure.suptitle(title)
    return figure


def wrapper_classes(module_name: str, base_name: str) -> list[type]:
    """``base_name`` and its subclasses in ``module_name`` (a library's scikit-learn wrappers)
    that define their own ``fit``: the methods to patch, each once."""
    base = getattr(importlib.import_module(module_name), base_name)
    found: list[type] = []
    todo: list[type] = [base]
    while todo:
        cls = todo.pop()
        if cls.__module__ == module_name and cls not in found:
            if "fit" in cls.__dict__:
                found.append(cls)
            todo.extend(cls.__subclasses__())
    return found
