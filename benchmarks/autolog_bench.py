"""Figure 11 (info): the cost of autolog, fits with it against the same fits without it.

- a small scikit-learn fit (LogisticRegression on iris, 150 x 4), autolog's own run, metrics,
  fingerprint and model included, and the same with ``log_models=False``;
- a 100-step PyTorch Lightning loop (a linear model on random data, CPU).

Used by bench.py (``--only autolog``); the helpers it needs are passed in.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any


def sklearn_figures(ctx: Any, figure: Callable[..., Any], store: Callable[..., Any]) -> list[Any]:
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import nbtrack
    import nbtrack.sklearn

    X, y = load_iris(return_X_y=True, as_frame=True)
    repeats = ctx.sizes.start_run_repeats

    def fit() -> None:
        LogisticRegression(max_iter=200).fit(X, y)

    out = []
    for label, log_models in (("with the model", True), ("no model", False)):
        with store(ctx.dirs, f"autolog-sklearn-{log_models}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit()
            nbtrack.sklearn.autolog(log_models=log_models)
            fit()  # warm-up: the first run reads the environment once
            (on_times, _), (off_times, _) = _alternate(
                lambda lm=log_models: nbtrack.sklearn.autolog(log_models=lm),
                lambda: nbtrack.sklearn.autolog(disable=True),
                fit, repeats, ctx.sizes.blocks,
            )
        on_s, off_s = statistics.median(on_times), statistics.median(off_times)
        out.append(figure(
            f"autolog_sklearn_{'model' if log_models else 'nomodel'}",
            f"sklearn fit, autolog {label}, +{(on_s - off_s) * 1e3:.1f} ms", on_s, off_s,
            "no autolog", "s", on_s / off_s, "with / without autolog (median)", None,
            details={"with_s": on_times, "without_s": off_times},
        ))
    return out


def _alternate(turn_on: Callable[[], Any], turn_off: Callable[[], Any], fn: Callable[[], Any],
               repeats: int, blocks: int) -> tuple[tuple[list[float], None],
                                                   tuple[list[float], None]]:
    """``fn`` timed with autolog on and off, in alternating blocks (as bench.paired does)."""
    import gc
    import time

    on: list[float] = []
    off: list[float] = []
    per_block = max(1, repeats // max(1, blocks))
    for _ in range(max(1, blocks)):
        for target, switch in ((on, turn_on), (off, turn_off)):
            switch()
            gc.collect()
            gc.disable()
            try:
                for _ in range(per_block):
                    start = time.perf_counter()
                    fn()
                    target.append(time.perf_counter() - start)
            finally:
                gc.enable()
    turn_off()
    return (on, None), (off, None)


def lightning_figure(ctx: Any, figure: Callable[..., Any], store: Callable[..., Any]) -> Any:
    import logging
    import warnings

    import torch
    from lightning.pytorch import LightningModule, Trainer

    import nbtrack
    import nbtrack.pytorch

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Linear(LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.TensorDataset(torch.randn(800, 8), torch.randn(800, 1))

    def fit() -> None:
        loader = torch.utils.data.DataLoader(data, batch_size=8)
        trainer = Trainer(max_steps=100, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False,
                          accelerator="cpu", devices=1)
        trainer.fit(Linear(), loader)

    repeats = max(2, ctx.sizes.start_run_repeats // 10)
    with store(ctx.dirs, "autolog-lightning"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit()
        nbtrack.pytorch.autolog()
        fit()
        (on_times, _), (off_times, _) = _alternate(
            nbtrack.pytorch.autolog, lambda: nbtrack.pytorch.autolog(disable=True), fit,
            repeats, ctx.sizes.blocks,
        )
    on_s, off_s = statistics.median(on_times), statistics.median(off_times)
    return figure(
        "autolog_lightning", f"Lightning 100 steps, autolog, +{(on_s - off_s) * 1e3:.0f} ms",
        on_s, off_s, "no autolog", "s", on_s / off_s, "with / without autolog (median)", None,
        details={"with_s": on_times, "without_s": off_times},
    )
