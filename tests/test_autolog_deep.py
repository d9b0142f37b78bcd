"""Deep-learning autolog: PyTorch Lightning, Keras 3 (torch backend), Optuna, and the one-line
plain PyTorch loop helper. Where each logs, what it logs, that it never breaks training, and
that disabling puts the originals back."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dependencies import needs

import nbtrack
from nbtrack.autologging import keras as keras_autolog
from nbtrack.autologging import library_autolog, patching, scope, torch_loop
from nbtrack.autologging import lightning as lightning_autolog
from nbtrack.autologging import optuna as optuna_autolog
from nbtrack.exceptions import InvalidKeyError, NbtrackWarning

MINE = ("pytorch_lightning", "keras", "optuna")


@pytest.fixture(autouse=True)
def autolog_off(store_dir: Path) -> Iterator[None]:
    """Patches are global: every test ends with these integrations off and not silent."""
    yield
    for name in MINE:
        library_autolog(name, disable=True, exclusive=False, silent=True)
        patching.set_silent(name, False)
        scope.exclusive.discard(name)


def _runs() -> list[Any]:
    return nbtrack.Client().search_runs(["0"], max_results=1000)  # type: ignore[no-any-return]


def _steps(run_id: str, key: str) -> list[int]:
    return [m.step for m in nbtrack.get_metric_history(run_id, key)]


# -- plain PyTorch loops ---------------------------------------------------------------------


def _tiny_loop(steps: int, log: Any) -> list[float]:
    torch = needs("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        log(loss)
        losses.append(loss.item())
    return losses


def test_log_step_logs_the_loss_at_each_step() -> None:
    with nbtrack.start_run() as run:
        losses = _tiny_loop(5, nbtrack.pytorch.log_step)
        nbtrack.pytorch.log_step({"lr": 0.1, "grad_norm": np.float32(2.5)}, step=10)
        nbtrack.pytorch.log_step(0.5, key="lr")  # the count goes on from the step given
    history = nbtrack.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx(losses)
    assert _steps(run.info.run_id, "lr") == [10, 11]
    assert _steps(run.info.run_id, "grad_norm") == [10]
    with nbtrack.start_run() as second:  # a new run counts from 0 again
        _tiny_loop(2, nbtrack.pytorch.log_step)
    assert _steps(second.info.run_id, "loss") == [0, 1]
    assert len(_runs()) == 2


def test_log_step_rejects_bad_input_at_once() -> None:
    torch = needs("torch")
    with nbtrack.start_run():
        with pytest.raises(TypeError, match="single number"):
            nbtrack.pytorch.log_step(torch.ones(3))
        with pytest.raises(InvalidKeyError):
            nbtrack.pytorch.log_step(1.0, key="bad key!")
        with pytest.raises(TypeError, match="real number"):
            nbtrack.pytorch.log_step({"fine": 1.0, "text": "0.5"})  # nothing logged
        with pytest.raises(TypeError, match=r"step must be an integer \(or a float with a whole"):
            nbtrack.pytorch.log_step(1.0, step=1.5)
        assert nbtrack.get_run(nbtrack.active_run().info.run_id).data.metrics == {}


def test_log_step_reads_accelerator_values_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = needs("torch")
    # CPU tensors stand in for GPU ones: no device type is read at once.
    syncs: list[int] = []
    real_resolve = torch_loop._resolve

    def counting_resolve() -> None:
        syncs.append(len(torch_loop._pending))
        real_resolve()

    monkeypatch.setattr(torch_loop, "_READ_NOW", frozenset())
    monkeypatch.setattr(torch_loop, "_resolve", counting_resolve)
    monkeypatch.setattr(torch_loop, "SYNC_EVERY", 4)
    monkeypatch.setattr(torch_loop, "SYNC_SECONDS", 1e9)
    running = torch.zeros(())
    with nbtrack.start_run() as run:
        for i in range(10):
            running += 1.0  # in place: the value logged is the one at the call
            nbtrack.pytorch.log_step(running)
            assert len(torch_loop._pending) == (i + 1) % 4
        assert len(_steps(run.info.run_id, "loss")) == 8  # two kept values still wait
    values = [m.value for m in nbtrack.get_metric_history(run.info.run_id, "loss")]
    assert values == [float(i) for i in range(1, 11)]  # the run's end read the last two
    assert [n for n in syncs if n] == [4, 4, 2]
    assert torch_loop._pending == []


# -- PyTorch Lightning -------------------------------------------------------------------------


def _lightning() -> tuple[Any, Any, Any]:
    """(lightning, a LightningModule class, a tiny DataLoader of 4 batches)."""
    torch = needs("torch")
    L = needs("lightning")

    class TinyRegressor(L.LightningModule):
        def __init__(self, lr: float = 0.1, hidden: int = 4, fail_at: int = -1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, 1))
            self.example_input_array = torch.zeros(2, 3)

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.global_step == self.hparams.fail_at:
                raise RuntimeError("diverged")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3), torch.randn(32, 1))
    return L, TinyRegressor, torch.utils.data.DataLoader(data, batch_size=8)


def _trainer(L: Any, root: Path, **options: Any) -> Any:
    settings = dict(max_epochs=2, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                    default_root_dir=str(root), accelerator="cpu")
    settings.update(options)
    return L.Trainer(**settings)


def test_lightning_autolog_outside_a_run(tmp_path: Path) -> None:
    torch = needs("torch")
    L, Module, loader = _lightning()
    nbtrack.pytorch.autolog()
    model = Module(lr=0.05, hidden=5)
    trainer = _trainer(L, tmp_path)
    trainer.fit(model, loader)
    assert trainer.loggers == []  # autolog's logger was there for the fit only
    (run,) = _runs()
    assert run.info.run_name == "TinyRegressor" and run.info.status == "FINISHED"
    assert run.data.tags["nbtrack.autolog"] == "pytorch_lightning"
    params = run.data.params
    assert params["lr"] == "0.05" and params["hidden"] == "5" and params["epochs"] == "2"
    assert params["optimizer_name"] == "SGD" and params["optimizer_momentum"] == "0.9"
    assert _steps(run.info.run_id, "train_loss") == list(range(8))  # 4 batches x 2 epochs
    assert run.data.metrics["epoch"] == 1.0
    loaded = nbtrack.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    x = torch.randn(4, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_lightning_autolog_inside_a_run_makes_no_extra_run(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    csv = L.pytorch.loggers.CSVLogger(str(tmp_path / "csv"))
    nbtrack.pytorch.autolog(log_models=False)
    with nbtrack.start_run(run_name="mine") as run:
        trainer = _trainer(L, tmp_path, logger=csv)
        trainer.fit(Module(), loader)
        assert trainer.loggers == [csv]  # the user's logger kept, and alone again after
    (only,) = _runs()
    assert only.info.run_id == run.info.run_id and only.info.run_name == "mine"
    assert only.data.params["lr"] == "0.1"
    assert _steps(run.info.run_id, "train_loss") == list(range(8))
    assert "model" not in {p.split("/")[0] for p, _ in
                           nbtrack.Client().list_artifact_files(run.info.run_id)}
    assert (Path(csv.log_dir) / "metrics.csv").exists()


def test_the_lightning_logger_alone(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    logger = nbtrack.pytorch.NbtrackLogger(run_name="by-hand")
    assert isinstance(logger, L.pytorch.loggers.Logger)
    _trainer(L, tmp_path, logger=logger).fit(Module(hidden=3), loader)
    (run,) = _runs()
    assert run.info.run_name == "by-hand" and run.info.status == "FINISHED"
    assert run.info.run_id == logger.run_id == logger.version
    assert logger.name == run.info.experiment_id
    assert isinstance(logger.experiment, nbtrack.Client)
    assert run.data.params == {"lr": "0.1", "hidden": "3", "fail_at": "-1"}
    assert _steps(run.info.run_id, "train_loss") == list(range(8))
    logger.log_hyperparams({"optimizer": {"name": "sgd", "betas": {"b1": 0.9}}})
    logger.log_metrics({"acc@1": 0.5, "note": "skipped"}, step=3)
    run = nbtrack.get_run(run.info.run_id)
    assert run.data.params["optimizer/name"] == "sgd"
    assert run.data.params["optimizer/betas/b1"] == "0.9"
    assert _steps(run.info.run_id, "acc_1") == [3] and "note" not in run.data.metrics
    # names that would not read as themselves as paths are made keys, not dropped with the rest
    logger.log_hyperparams({"opt": {"": 3, "..": 4}, "a//b": 5, "ratio:x": 6})
    params = nbtrack.get_run(run.info.run_id).data.params
    assert {k: params[k] for k in ("opt", "opt/__", "a/b", "ratio:x")} == {
        "opt": "3", "opt/__": "4", "a/b": "5", "ratio:x": "6"
    }
    # inside an active run the logger writes into it
    with nbtrack.start_run() as active:
        inside = nbtrack.pytorch.NbtrackLogger()
        _trainer(L, tmp_path, logger=inside).fit(Module(), loader)
    assert inside.run_id == active.info.run_id and len(_runs()) == 2


def test_the_lightning_logger_fails_its_run_when_training_fails(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    with pytest.raises(RuntimeError, match="diverged"):
        _trainer(L, tmp_path, logger=nbtrack.pytorch.NbtrackLogger()).fit(
            Module(fail_at=3), loader)
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert _steps(run.info.run_id, "train_loss") == [0, 1, 2]


def test_lightning_autolog_uses_the_trainers_own_nbtrack_logger(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    nbtrack.pytorch.autolog()
    logger = nbtrack.pytorch.NbtrackLogger(run_name="given")
    trainer = _trainer(L, tmp_path, logger=logger)
    trainer.fit(Module(), loader)
    assert trainer.loggers == [logger]
    (run,) = _runs()  # no second run for autolog
    assert run.info.run_name == "given" and run.info.status == "FINISHED"
    assert run.data.params["optimizer_name"] == "SGD"
    assert "model/MLmodel.json" in {p for p, _ in
                                    nbtrack.Client().list_artifact_files(run.info.run_id)}


def test_lightning_autolog_logs_checkpoints(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    nbtrack.pytorch.autolog(log_models=False, log_checkpoints=True)
    _trainer(L, tmp_path, enable_checkpointing=True).fit(Module(), loader)
    (run,) = _runs()
    files = [p for p, _ in nbtrack.Client().list_artifact_files(run.info.run_id)]
    assert files and all(p.startswith("checkpoints/") and p.endswith(".ckpt") for p in files)
    assert run.data.tags["best_checkpoint"] in files


def test_lightning_autolog_takes_checkpoint_as_log_checkpoints(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # MLflow's defaults of the others: none
        nbtrack.pytorch.autolog(log_models=False, checkpoint=True)
    _trainer(L, tmp_path, enable_checkpointing=True).fit(Module(), loader)
    (run,) = _runs()
    files = [p for p, _ in nbtrack.Client().list_artifact_files(run.info.run_id)]
    assert files and all(p.startswith("checkpoints/") for p in files)
    # what nbtrack cannot honour is said, at the call and at a fit with nothing to log
    with pytest.warns(UserWarning, match=r"ignores checkpoint_monitor='val_acc', "
                      r"checkpoint_mode='max', checkpoint_save_freq=2"):
        nbtrack.pytorch.autolog(log_models=False, checkpoint=True, checkpoint_monitor="val_acc",
                                checkpoint_mode="max", checkpoint_save_freq=2)
    with pytest.warns(NbtrackWarning, match="no ModelCheckpoint"):
        _trainer(L, tmp_path).fit(Module(), loader)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # logging off: nothing ignored, no warning
        nbtrack.pytorch.autolog(log_models=False, checkpoint_mode="max")
        _trainer(L, tmp_path).fit(Module(), loader)


def test_lightning_autolog_log_every_n_epoch_and_step(tmp_path: Path) -> None:
    torch = needs("torch")
    L, Module, loader = _lightning()

    class Validated(Module):  # type: ignore[misc, valid-type]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    nbtrack.pytorch.autolog(log_models=False, log_every_n_epoch=2, log_every_n_step=3)
    _trainer(L, tmp_path, max_epochs=4, num_sanity_val_steps=0).fit(Validated(), loader, loader)
    (run,) = _runs()
    assert _steps(run.info.run_id, "train_loss") == [2, 5, 8, 11, 14]  # of 16 steps
    assert _steps(run.info.run_id, "val_loss") == [7, 15]  # the ends of epochs 1 and 3
    # each call starts from the defaults: every step and every epoch again
    nbtrack.pytorch.autolog(log_models=False)
    _trainer(L, tmp_path, max_epochs=2, num_sanity_val_steps=0).fit(Validated(), loader, loader)
    newest = max(_runs(), key=lambda r: r.info.start_time)
    assert _steps(newest.info.run_id, "train_loss") == list(range(8))
    assert _steps(newest.info.run_id, "val_loss") == [3, 7]


def test_lightning_autolog_logs_the_epoch_once_per_step(tmp_path: Path) -> None:
    """Lightning hands its loggers the step's values, validation's and the epoch's at an epoch's
    last step, each with ``epoch``: it was logged two or three times at steps 3 and 7."""
    torch = needs("torch")
    L, Module, loader = _lightning()

    class Validated(Module):  # type: ignore[misc, valid-type]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            self.log("train_loss_mean", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    nbtrack.pytorch.autolog(log_models=False)
    _trainer(L, tmp_path, num_sanity_val_steps=0).fit(Validated(), loader, loader)
    (run,) = _runs()
    epochs = nbtrack.get_metric_history(run.info.run_id, "epoch")
    assert [(m.step, m.value) for m in epochs] == [(s, float(s // 4)) for s in range(8)]
    assert _steps(run.info.run_id, "val_loss") == [3, 7]
    assert _steps(run.info.run_id, "train_loss_mean") == [3, 7]


@pytest.mark.parametrize("options, message", [
    ({"log_every_n_epoch": 0}, "log_every_n_epoch must be a whole number >= 1; got 0"),
    ({"log_every_n_epoch": None}, "log_every_n_epoch must be a whole number >= 1; got None"),
    ({"log_every_n_epoch": True}, "log_every_n_epoch must be a whole number >= 1"),
    ({"log_every_n_step": -1}, "log_every_n_step must be a whole number >= 1 or None; got -1"),
    ({"log_every_n_step": "5"}, "log_every_n_step must be a whole number >= 1 or None"),
    ({"checkpoint_mode": "avg"}, "checkpoint_mode must be 'min' or 'max'; got 'avg'"),
    ({"checkpoint_save_freq": "batch"}, "checkpoint_save_freq must be 'epoch' or a whole"),
    ({"checkpoint_save_freq": 0}, "checkpoint_save_freq must be 'epoch' or a whole"),
    ({"extra_tags": ["team"]}, "extra_tags must be a dict"),
])
def test_lightning_autolog_rejects_bad_keywords(options: dict[str, Any], message: str) -> None:
    from nbtrack.exceptions import InvalidInputError

    needs("lightning")
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        nbtrack.pytorch.autolog(**options)


def test_lightning_autolog_registers_tags_and_skips_the_signature(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    nbtrack.pytorch.autolog(registered_model_name="tiny", extra_tags={"team": "vision"},
                            log_model_signatures=False, log_datasets=False,
                            disable_for_unsupported_versions=True)
    _trainer(L, tmp_path).fit(Module(), loader)
    (run,) = _runs()
    assert run.data.tags["team"] == "vision"
    loaded = nbtrack.pyfunc.load_model("models:/tiny/1")
    assert loaded.metadata.signature is None
    assert loaded.metadata.run_id == run.info.run_id
    # each call starts from the defaults: no tag, no registration, the signature inferred
    nbtrack.pytorch.autolog()
    _trainer(L, tmp_path).fit(Module(), loader)
    newest = max(_runs(), key=lambda r: r.info.start_time)
    assert "team" not in newest.data.tags
    model = nbtrack.pyfunc.load_model(f"runs:/{newest.info.run_id}/model")
    assert model.metadata.signature is not None
    assert len(nbtrack.Client().search_model_versions("name='tiny'")) == 1


def test_lightning_hook_errors_warn_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    L, Module, loader = _lightning()

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lightning_autolog, "_log_model", broken)
    monkeypatch.setattr(nbtrack.Client, "log_params", broken)
    nbtrack.pytorch.autolog()
    trainer = _trainer(L, tmp_path)
    with pytest.warns(NbtrackWarning, match="disk on fire") as caught:
        trainer.fit(Module(), loader)
    messages = [str(c.message) for c in caught]
    assert any("logging hyperparameters failed" in m for m in messages)
    assert any("logging the model failed" in m for m in messages)
    assert trainer.state.finished and trainer.global_step == 8
    (run,) = _runs()
    assert run.info.status == "FINISHED" and _steps(run.info.run_id, "train_loss") == list(
        range(8))


def test_lightning_disable_puts_trainer_fit_back(tmp_path: Path) -> None:
    L, Module, loader = _lightning()
    owner = next(k for k in L.Trainer.__mro__ if "fit" in k.__dict__)
    original = owner.__dict__["fit"]
    nbtrack.pytorch.autolog()
    assert owner.__dict__["fit"] is not original
    assert "pytorch_lightning" in nbtrack.autologging.enabled_integrations()
    nbtrack.pytorch.autolog(disable=True)
    assert owner.__dict__["fit"] is original
    _trainer(L, tmp_path).fit(Module(), loader)
    assert _runs() == []


# -- Keras 3 -----------------------------------------------------------------------------------


def _keras_model() -> tuple[Any, Any, Any, Any]:
    """(keras, a compiled Sequential, x, y): 48 rows, 4 features."""
    keras = needs("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x = rng.random((48, 4), dtype=np.float32)
    return keras, model, x, x.sum(axis=1, keepdims=True)


def test_keras_autolog_outside_a_run() -> None:
    keras, model, x, y = _keras_model()
    nbtrack.keras.autolog()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    (run,) = _runs()
    assert run.info.run_name == "Sequential" and run.info.status == "FINISHED"
    assert run.data.tags["nbtrack.autolog"] == "keras"
    assert run.data.params == {
        "epochs": "3", "batch_size": "16", "steps_per_epoch": "3", "optimizer_name": "Adam",
        "learning_rate": "0.01", "loss_function": "mse", "layer_count": "2",
        "param_count": "49",
    }
    for key in ("loss", "mae", "val_loss", "val_mae"):
        metrics = nbtrack.get_metric_history(run.info.run_id, key)
        assert [m.step for m in metrics] == [0, 1, 2]
        assert [m.value for m in metrics] == pytest.approx(history.history[key])
    path = nbtrack.Client().get_artifact_uri(run.info.run_id, "model.keras")
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0),
                               rtol=1e-6)


def test_keras_autolog_inside_a_run_keeps_the_users_callbacks() -> None:
    keras, model, x, y = _keras_model()
    seen: list[int] = []
    mine = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    nbtrack.keras.autolog(log_models=False)
    with nbtrack.start_run() as run:
        model.fit(x, y, epochs=3, verbose=0, callbacks=[mine])
    (only,) = _runs()
    assert only.info.run_id == run.info.run_id and seen == [0, 1, 2]
    assert _steps(run.info.run_id, "loss") == [0, 1, 2]
    assert only.data.params["epochs"] == "3" and "batch_size" not in only.data.params
    assert nbtrack.Client().list_artifact_files(run.info.run_id) == []


def test_the_keras_callback_alone() -> None:
    keras, model, x, y = _keras_model()
    callback = nbtrack.keras.NbtrackCallback(batch_size=8)
    assert isinstance(callback, keras.callbacks.Callback)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    (run,) = _runs()
    assert run.info.run_name == "Sequential" and run.info.status == "FINISHED"
    assert run.data.params["batch_size"] == "8" and run.data.params["steps_per_epoch"] == "6"
    assert _steps(run.info.run_id, "mae") == [0, 1, 2]
    with nbtrack.start_run() as active:  # inside a run: into it, no run of its own
        model.fit(x, y, epochs=2, verbose=0, callbacks=[nbtrack.keras.NbtrackCallback()])
    assert len(_runs()) == 2 and _steps(active.info.run_id, "loss") == [0, 1]


def test_a_failed_fit_leaves_the_callbacks_run_failed_not_running() -> None:
    keras, model, x, y = _keras_model()

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise KeyboardInterrupt

    callback = nbtrack.keras.NbtrackCallback()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callback, Boom()])
    (run,) = _runs()
    assert run.info.status == "RUNNING"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])  # used again: that run ends
    statuses = {r.info.run_id: r.info.status for r in _runs()}
    assert statuses[run.info.run_id] == "FAILED" and sorted(statuses.values()) == [
        "FAILED", "FINISHED"]


def test_keras_autolog_every_n_steps_instead_of_every_epoch() -> None:
    _, model, x, y = _keras_model()
    nbtrack.keras.autolog(log_models=False, log_every_epoch=False, log_every_n_steps=2,
                          extra_tags={"team": "vision"}, log_datasets=False,
                          log_model_signatures=False, disable_for_unsupported_versions=True)
    # 36 training rows in batches of 12: 3 optimizer steps per epoch, 9 in all
    model.fit(x, y, epochs=3, batch_size=12, validation_split=0.25, verbose=0)
    (run,) = _runs()
    assert run.data.tags["team"] == "vision"
    assert _steps(run.info.run_id, "loss") == [2, 4, 6, 8]
    assert _steps(run.info.run_id, "mae") == [2, 4, 6, 8]
    assert _steps(run.info.run_id, "val_loss") == [3, 6, 9]  # where each epoch ended
    # each call starts from the defaults: per epoch again, no tag
    nbtrack.keras.autolog(log_models=False)
    model.fit(x, y, epochs=2, batch_size=12, verbose=0)
    newest = max(_runs(), key=lambda r: r.info.start_time)
    assert _steps(newest.info.run_id, "loss") == [0, 1] and "team" not in newest.data.tags


@pytest.mark.parametrize("options, message", [
    ({"log_every_n_steps": 2}, "log_every_n_steps must be None when log_every_epoch=True"),
    ({"log_every_epoch": False}, "must be a whole number >= 1 when log_every_epoch=False"),
    ({"log_every_epoch": False, "log_every_n_steps": 0},
     "log_every_n_steps must be a whole number >= 1 or None; got 0"),
    ({"save_model_kwargs": "zipped"}, "save_model_kwargs must be a dict"),
    ({"extra_tags": ["team"]}, "extra_tags must be a dict"),
])
def test_keras_autolog_rejects_bad_keywords(options: dict[str, Any], message: str) -> None:
    from nbtrack.exceptions import InvalidInputError

    needs("keras")
    with pytest.raises(InvalidInputError, match=message):
        nbtrack.keras.autolog(**options)


def test_keras_autolog_passes_save_model_kwargs_and_warns_of_what_it_ignores() -> None:
    _, model, x, y = _keras_model()
    with pytest.warns(UserWarning, match=r"ignores log_input_examples=True, "
                      r"save_exported_model=True, registered_model_name='reg'"):
        nbtrack.keras.autolog(log_input_examples=True, save_exported_model=True,
                              registered_model_name="reg", save_model_kwargs={"bogus": 1})
    with pytest.warns(NbtrackWarning, match="logging the model failed.*bogus"):
        model.fit(x, y, epochs=1, verbose=0)  # model.save got the kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # MLflow's defaults: no warning
        nbtrack.keras.autolog()
        model.fit(x, y, epochs=1, verbose=0)
    newest = max(_runs(), key=lambda r: r.info.start_time)
    assert "model.keras" in {p for p, _ in nbtrack.Client().list_artifact_files(
        newest.info.run_id)}


def test_keras_hook_errors_warn_and_training_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    _, model, x, y = _keras_model()

    def broken(*args: object) -> None:
        raise RuntimeError("no more params")

    monkeypatch.setattr(keras_autolog, "_training_params", broken)
    monkeypatch.setattr(keras_autolog, "_log_model", broken)
    nbtrack.keras.autolog()
    with pytest.warns(NbtrackWarning, match="no more params"):
        history = model.fit(x, y, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    (run,) = _runs()
    assert run.info.status == "FINISHED" and _steps(run.info.run_id, "loss") == [0, 1, 2]
    nbtrack.keras.autolog(silent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbtrackWarning)
        model.fit(x, y, epochs=1, verbose=0)


def test_keras_disable_puts_model_fit_back() -> None:
    keras, model, x, y = _keras_model()
    owner = next(k for k in keras.Model.__mro__ if "fit" in k.__dict__)
    original = owner.__dict__["fit"]
    nbtrack.keras.autolog()
    assert owner.__dict__["fit"] is not original
    nbtrack.keras.autolog(disable=True)
    assert owner.__dict__["fit"] is original
    model.fit(x, y, epochs=1, verbose=0)
    assert _runs() == []


def test_keras_without_a_backend_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    needs("keras")
    code = (
        "import sys; sys.modules['tensorflow'] = None  # no backend at all, whatever is here\n"
        "import warnings, nbtrack, nbtrack.keras\n"
        "warnings.simplefilter('always')\n"
        "nbtrack.keras.autolog()\n"
        "print('on:', nbtrack.autologging.enabled_integrations())\n"
        "try:\n"
        "    nbtrack.keras.NbtrackCallback\n"
        "except ImportError as exc:\n"
        "    print('callback:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["NBTRACK_TRACKING_URI"] = str(tmp_path / "store")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "autolog (keras) is off" in out.stderr and "KERAS_BACKEND=torch" in out.stderr
    assert "on: []" in out.stdout and "callback: keras cannot be imported" in out.stdout


# -- Optuna ------------------------------------------------------------------------------------


@pytest.fixture
def optuna() -> Any:
    import optuna as module

    module.logging.set_verbosity(module.logging.WARNING)
    return module


def _study(optuna: Any) -> Any:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def _objective(trial: Any) -> float:
    x = trial.suggest_float("x", -2.0, 2.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 1.0) ** 2 + (0.5 if kind == "b" else 0.0)


def _children(parent_id: str) -> list[Any]:
    found = [r for r in _runs() if r.data.tags.get("nbtrack.parentRunId") == parent_id]
    return sorted(found, key=lambda r: int(r.data.tags["optuna.trial_number"]))


def _check_trials(study: Any, parent: Any) -> None:
    children = _children(parent.info.run_id)
    assert len(children) == len(study.trials) == 5
    for child, trial in zip(children, study.trials, strict=True):
        assert child.info.run_name == f"trial-{trial.number}"
        assert child.info.status == "FINISHED"
        assert child.data.params == {k: str(v) for k, v in trial.params.items()}
        assert child.data.metrics["value"] == pytest.approx(trial.value)
        assert child.data.tags["optuna.trial_state"] == "COMPLETE"
    best = study.best_trial
    assert parent.data.metrics["best_value"] == pytest.approx(best.value)
    assert parent.data.tags["best_trial"] == str(best.number)
    assert parent.data.tags["best_params.x"] == str(best.params["x"])
    assert _steps(parent.info.run_id, "best_value") == [0, 1, 2, 3, 4]


def test_the_optuna_callback_outside_a_run(optuna: Any) -> None:
    study = _study(optuna)
    study.optimize(_objective, n_trials=5, callbacks=[nbtrack.optuna.NbtrackCallback()])
    runs = _runs()
    assert len(runs) == 6
    (parent,) = [r for r in runs if "nbtrack.parentRunId" not in r.data.tags]
    assert parent.info.run_name == "optuna-study" and parent.info.status == "FINISHED"
    assert parent.data.tags["optuna.directions"] == "MINIMIZE"
    assert parent.data.tags["optuna.sampler"] == "RandomSampler"
    _check_trials(study, parent)
    assert nbtrack.active_run() is None


def test_the_optuna_callback_with_parallel_trials_records_into_the_optimizing_run(
    optuna: Any,
) -> None:
    """With n_jobs > 1 the callback runs on Optuna's worker threads, which have no active run
    of their own: the trials still go under the run of the thread calling optimize, wherever
    the callback was made."""
    callback = nbtrack.optuna.NbtrackCallback()  # made before the run
    study = _study(optuna)
    with nbtrack.start_run(run_name="my-study") as run:
        study.optimize(_objective, n_trials=6, n_jobs=3, callbacks=[callback])
    runs = _runs()
    assert len(runs) == 7  # the user's run and six trials: no study run of the callback's own
    assert {r.data.tags.get("nbtrack.parentRunId") for r in runs} == {None, run.info.run_id}
    assert nbtrack.get_run(run.info.run_id).data.tags["optuna.directions"] == "MINIMIZE"


def test_an_optuna_callback_made_in_an_ended_run_does_not_write_into_it(optuna: Any) -> None:
    with nbtrack.start_run(run_name="earlier") as earlier:
        callback = nbtrack.optuna.NbtrackCallback()
    _study(optuna).optimize(_objective, n_trials=3, n_jobs=2, callbacks=[callback])
    assert _children(earlier.info.run_id) == []
    (study_run,) = [r for r in _runs() if r.info.run_name == "optuna-study"]
    assert len(_children(study_run.info.run_id)) == 3


def test_optuna_autolog_inside_a_run_nests_the_trials(optuna: Any) -> None:
    def objective(trial: Any) -> float:
        value = _objective(trial)
        nbtrack.log_metric("inside", value)  # lands in the trial's own run
        return value

    nbtrack.optuna.autolog()
    study = _study(optuna)
    with nbtrack.start_run(run_name="search") as run:
        study.optimize(objective, n_trials=5)
        assert nbtrack.active_run().info.run_id == run.info.run_id
    runs = _runs()
    assert len(runs) == 6  # the user's run and five trials: nothing stray
    parent = nbtrack.get_run(run.info.run_id)
    _check_trials(study, parent)
    assert parent.data.params == {"best_x": str(study.best_params["x"]),
                                  "best_kind": study.best_params["kind"]}
    assert "inside" not in parent.data.metrics
    for child, trial in zip(_children(run.info.run_id), study.trials, strict=True):
        assert child.data.metrics["inside"] == pytest.approx(trial.value)


def test_a_fit_inside_a_trial_logs_into_the_trials_run(optuna: Any) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)

    def objective(trial: Any) -> float:
        C = trial.suggest_float("C", 0.01, 10.0, log=True)
        return float(LogisticRegression(C=C, max_iter=300).fit(X, y).score(X, y))

    nbtrack.sklearn.autolog(log_models=False)
    nbtrack.optuna.autolog()
    try:
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        study.optimize(objective, n_trials=3)
    finally:
        nbtrack.sklearn.autolog(disable=True)
    runs = _runs()
    assert len(runs) == 4  # the study and its three trials; no run per fit
    (parent,) = [r for r in runs if r.info.run_name == "optuna-study"]
    for child, trial in zip(_children(parent.info.run_id), study.trials, strict=True):
        assert child.data.params["C"] == str(trial.params["C"])
        assert child.data.params["max_iter"] == "300"  # from the fit's own autolog
        assert child.data.metrics["training_score"] == pytest.approx(trial.value)


def test_optuna_autolog_in_a_track_cell_makes_no_stray_runs(optuna: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    assert shell.run_cell("%load_ext nbtrack").success
    shell.user_ns.update(optuna=optuna, _objective=_objective, nbtrack=nbtrack)
    nbtrack.optuna.autolog()
    cell = ("%%track -q --name tuning --no-snapshot --no-capture\n"
            "study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))\n"
            "study.optimize(_objective, n_trials=5)\n")
    result = shell.run_cell(cell)
    assert result.success, result.error_in_exec
    runs = _runs()
    (parent,) = [r for r in runs if r.info.run_name == "tuning"]
    assert len(runs) == 6 and parent.info.status == "FINISHED"
    _check_trials(shell.user_ns.pop("study"), parent)


def test_optuna_autolog_outside_a_run(optuna: Any) -> None:
    nbtrack.optuna.autolog()
    study = _study(optuna)
    study.optimize(_objective, n_trials=5)
    (parent,) = [r for r in _runs() if "nbtrack.parentRunId" not in r.data.tags]
    assert parent.info.run_name == "optuna-study" and parent.info.status == "FINISHED"
    assert parent.data.tags["nbtrack.autolog"] == "optuna"
    assert parent.data.params["best_x"] == str(study.best_params["x"])
    _check_trials(study, parent)
    assert nbtrack.active_run() is None


def test_optuna_pruned_and_failed_trials(optuna: Any) -> None:
    def objective(trial: Any) -> float:
        x = trial.suggest_int("x", 0, 100)
        trial.report(float(x), step=0)
        trial.report(float(x) / 2, step=1)
        if trial.number == 1:
            raise optuna.TrialPruned()
        if trial.number == 2:
            raise ValueError("bad x")
        return float(x)

    nbtrack.optuna.autolog()
    with nbtrack.start_run() as run:
        _study(optuna).optimize(objective, n_trials=3, catch=(ValueError,))
    children = _children(run.info.run_id)
    assert [c.data.tags["optuna.trial_state"] for c in children] == [
        "COMPLETE", "PRUNED", "FAIL"]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "FAILED"]
    assert "bad x" in children[2].data.tags["nbtrack.error"]
    pruned = children[1].data  # Optuna gives a pruned trial its last reported value
    assert pruned.metrics["value"] == pruned.metrics["intermediate_value"]
    assert pruned.metrics["value"] == float(pruned.params["x"]) / 2
    assert _steps(children[1].info.run_id, "intermediate_value") == [0, 1]
    assert all(c.data.params["x"] for c in children)


def test_optuna_hook_errors_warn_and_the_study_goes_on(
    optuna: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("best is unknowable")

    monkeypatch.setattr(optuna_autolog.NbtrackCallback, "_log_best", broken)
    nbtrack.optuna.autolog()
    study = _study(optuna)
    with pytest.warns(NbtrackWarning, match="best is unknowable"):
        study.optimize(_objective, n_trials=5)
    assert len(study.trials) == 5
    assert all(t.state.name == "COMPLETE" for t in study.trials)


def test_optuna_disable_puts_optimize_back(optuna: Any) -> None:
    original = optuna.study.Study.__dict__["optimize"]
    nbtrack.optuna.autolog()
    assert optuna.study.Study.__dict__["optimize"] is not original
    nbtrack.optuna.autolog(disable=True)
    assert optuna.study.Study.__dict__["optimize"] is original
    _study(optuna).optimize(_objective, n_trials=2)
    assert _runs() == []


def test_the_facades() -> None:
    assert set(nbtrack.optuna.__all__) == {"NbtrackCallback", "autolog"}
    assert set(nbtrack.keras.__all__) == {"NbtrackCallback", "autolog"}
    assert {"autolog", "log_step", "flush_steps", "NbtrackLogger"} <= set(nbtrack.pytorch.__all__)
    for module in (nbtrack.optuna, nbtrack.keras, nbtrack.pytorch):
        assert module.autolog.__doc__
    with pytest.raises(AttributeError):
        nbtrack.keras.Nothing  # noqa: B018
