"""One line in a plain PyTorch training loop: ``nbtrack.pytorch.log_step(loss)``.

::

    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        nbtrack.pytorch.log_step(loss)                       # metric "loss", steps 0, 1, 2, ...

``log_step(value, step=None, key="loss")`` logs ``value`` (a 1-element tensor, a Python or
numpy number; or a dict of them, ``log_step({"loss": loss, "acc": acc})``) as a metric of the
active run (a run is started when none is active, as ``nbtrack.log_metric`` does), at ``step``
or, without one, at the next step of that key in that run: 0, 1, 2, ...

Reading a tensor that lives on a GPU waits for the GPU to finish its queued work (a device sync),
which stalls the training loop. So a tensor on an accelerator is detached, copied on its device
and kept; the kept values are read together, one sync for many steps: every ``SYNC_EVERY``
values, once the oldest has waited ``SYNC_SECONDS``, when the run ends, on :func:`flush_steps`,
and at interpreter exit. A CPU tensor or a number is logged at once (reading it costs no sync).
Either way a call costs microseconds: nbtrack buffers metric writes, never one transaction a
step.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..tracking import fluent
from ..tracking.validation import check_key, metric_value, step_value

__all__ = ["SYNC_EVERY", "SYNC_SECONDS", "flush_steps", "log_step"]

#: Accelerator values kept before they are read in one device sync.
SYNC_EVERY = 100
#: The longest an accelerator value waits to be read (checked at each log_step call).
SYNC_SECONDS = 2.0

#: Device types whose tensors are read at once (reading them waits for nothing).
_READ_NOW = frozenset({"cpu"})

_lock = threading.RLock()
#: (run id, key) -> the next automatic step
_next_step: dict[tuple[str, str], int] = {}
#: values on an accelerator not read yet: (client, run id, key, step, timestamp ms, tensor)
_pending: list[tuple[Any, str, str, int, int, Any]] = []
_pending_since = 0.0
#: runs whose end writes their kept values (and forgets their step counters)
_watched: set[str] = set()


def log_step(value: Any, step: int | None = None, key: str = "loss") -> None:
    """Log a training-loop value (the loss by default) at the next step, in one line.

    Parameters
    ----------
    value
        A 1-element tensor (any device, with or without grad), a Python or numpy number, or
        a dict ``{key: value}`` to log several at the same step.
    step
        The step. Default: the next one for this key in the active run (0, 1, 2, ...);
        giving a step moves the count on from there.
    key
        The metric's name when ``value`` is not a dict. Default ``"loss"``.

    Notes
    -----
    Tensors on a GPU are read in batches, without a device sync each step: see
    :mod:`nbtrack.autologging.torch_loop`. Bad input (a key not allowed, a tensor of more
    than one element, a value that is not a number) raises at once.
    """
    frame = fluent._frame()
    client, run_id = frame.client, frame.run.info.run_id
    if type(value) is float or hasattr(value, "detach") or not isinstance(value, Mapping):
        items: Any = ((key, value),)
    else:
        items = value.items()
    given = None if step is None else step_value(step)
    checked = []  # everything is checked before anything is logged
    for name, item in items:
        later, item = _prepare(item)
        checked.append((check_key(name, "metric"), later,
                        item if later else metric_value(name, item)))
    with _lock:
        if run_id not in _watched:
            _watch(frame, run_id)
        for name, later, item in checked:
            counter = (run_id, name)
            at = _next_step.get(counter, 0) if given is None else given
            if later:
                _add_pending((client, run_id, name, at, int(time.time() * 1000), item))
            else:
                client.log_metric(run_id, name, item, None, at)
            _next_step[counter] = at + 1
        if _pending and (len(_pending) >= SYNC_EVERY
                         or time.monotonic() - _pending_since >= SYNC_SECONDS):
            _resolve()


def flush_steps() -> None:
    """Read the accelerator values :func:`log_step` keeps and log them now (a run's end,
    and interpreter exit, do this by themselves)."""
    with _lock:
        _resolve()


def _prepare(value: Any) -> tuple[bool, Any]:
    """``(later, value)``: a CPU tensor read now; a tensor on an accelerator detached and
    copied on its device (``later``: read with others); anything else as it is."""
    if type(value) is float or type(value) is int or not hasattr(value, "detach"):
        return False, value  # numbers, numpy: checked by log_metric
    if value.numel() != 1:
        raise TypeError(
            f"log_step takes a single number; got a tensor of shape {tuple(value.shape)} "
            "(log one element, or a reduction such as .mean())"
        )
    if value.device.type in _READ_NOW:
        return False, value.item()  # no device to wait for
    # a copy on the device: an in-place update of the original later is not seen
    return True, value.detach().reshape(()).clone()


def _add_pending(row: tuple[Any, str, str, int, int, Any]) -> None:
    global _pending_since
    if not _pending:
        _pending_since = time.monotonic()
    _pending.append(row)


def _resolve() -> None:
    """Read every kept tensor, one transfer per device, and log the values (under _lock)."""
    if not _pending:
        return
    import torch

    rows = list(_pending)
    _pending.clear()
    by_device: dict[Any, list[tuple[Any, str, str, int, int, Any]]] = {}
    for row in rows:
        by_device.setdefault(row[5].device, []).append(row)
    for group in by_device.values():
        tensors = [row[5] for row in group]
        dtype = (torch.float64 if all(t.dtype == torch.float64 for t in tensors)
                 else torch.float32)
        values = torch.stack([t.to(dtype) for t in tensors]).tolist()  # the one sync
        for (client, run_id, name, at, stamp, _), number in zip(group, values, strict=True):
            client.log_metric(run_id, name, number, stamp, at)


class _RunEnd:
    """Stopped when its run ends: writes the kept values, forgets the run's step counters."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def stop(self) -> None:
        with _lock:
            _resolve()
            _watched.discard(self.run_id)
            for counter in [c for c in _next_step if c[0] == self.run_id]:
                del _next_step[counter]


def _watch(frame: Any, run_id: str) -> None:
    # The run's frame stops its observers when the run ends (end_run, a with block, %%track):
    # first in line, so the values are there before live curves take their last look.
    frame.observers.insert(0, _RunEnd(run_id))
    _watched.add(run_id)


atexit.register(flush_steps)
