"""The registry stage controls, driven through widget state as a front end would, on a real
store with real registered scikit-learn models."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack_widgets import RegistryControls, registry

MODEL = "churn-rf"
BEST = "background:#dafbe1"


@pytest.fixture
def models(store_dir: Path) -> dict[str, dict[str, float]]:
    """Three versions of MODEL from three runs (C = 0.01, 0.1, 1.0): version -> its metrics."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    X, y = load_iris(return_X_y=True)
    nbtrack.set_experiment("churn")
    out = {}
    for i, c in enumerate((0.01, 0.1, 1.0)):
        with nbtrack.start_run(run_name=f"C={c}"):
            model = LogisticRegression(C=c, max_iter=500).fit(X, y)
            metrics = {
                "accuracy": float(model.score(X, y)),
                "log_loss": float(log_loss(y, model.predict_proba(X))),
            }
            nbtrack.log_metrics(metrics)
            if i == 0:
                nbtrack.log_metric("only_here", 1.0)  # not shared by the other runs
            info = nbtrack.log_model(
                model, "model", registered_model_name=MODEL, input_example=X[:2]
            )
        out[str(info.registered_model_version)] = metrics
    return out


def stage(version: str) -> str:
    return nbtrack.Client().get_model_version(MODEL, version).current_stage


def stage_events(controls: RegistryControls) -> list[tuple[str | None, str | None, str | None]]:
    return [(e.version, e.from_value, e.to_value) for e in controls.events if e.kind == "stage"]


def test_rows_metrics_and_best_values(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    assert [r["version"] for r in controls.rows] == ["3", "2", "1"]  # newest first
    assert [r["stage"] for r in controls.rows] == ["None", "None", "None"]
    assert all(r["aliases"] == [] for r in controls.rows)
    assert [r["run_name"] for r in controls.rows] == ["C=1.0", "C=0.1", "C=0.01"]
    assert controls.metric_keys == ["accuracy", "log_loss"]  # only_here is not shared
    for row in controls.rows:
        assert row["metrics.accuracy"] == pytest.approx(models[row["version"]]["accuracy"])
    best_acc = max(models, key=lambda v: models[v]["accuracy"])
    best_loss = min(models, key=lambda v: models[v]["log_loss"])  # lower is better
    assert best_loss == "3" and models["1"]["log_loss"] > models["3"]["log_loss"]
    assert best_acc in controls.best()["accuracy"]
    assert controls.best()["log_loss"] == {best_loss}
    # the grid: 7 header cells, then 7 cells per version; the best loss cell is marked
    cells = controls.grid.children
    assert len(cells) == 7 * 4
    loss_cells = {controls.rows[i - 1]["version"]: cells[7 * i + 6].value for i in range(1, 4)}
    assert BEST in loss_cells["3"] and BEST not in loss_cells["1"]
    assert [d.value for d in controls.stage_dropdowns.values()] == ["None"] * 3
    assert list(controls.stage_dropdowns["1"].options) == [
        "None",
        "Staging",
        "Production",
        "Archived",
    ]
    assert "C=0.01" in cells[7 * 3 + 3].value  # source run: name and short id

    chosen = registry(MODEL, metrics=["log_loss", "only_here"], directions={"log_loss": "max"})
    assert chosen.metric_keys == ["log_loss", "only_here"]
    assert chosen.best()["log_loss"] == {"1"}  # the direction given wins over the guess
    assert chosen.rows[0]["metrics.only_here"] is None and chosen.best()["only_here"] == {"1"}


def test_staging_applies_at_once_with_the_comment(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    controls.comment.value = "first look"
    controls.stage_dropdowns["2"].value = "Staging"
    assert stage("2") == "Staging"
    assert controls.rows[1]["stage"] == "Staging"
    assert stage_events(controls) == [("2", "None", "Staging")]
    assert controls.events[-1].comment == "first look"
    assert "first look" in controls.trail.value and "None → Staging" in controls.trail.value
    assert controls.comment.value == ""  # used once
    assert "moved to Staging" in controls.message.value
    assert controls.confirmation.layout.display == "none"


def test_production_needs_confirmation(models: dict[str, dict[str, float]]) -> None:
    client = nbtrack.Client()
    client.transition_model_version_stage(MODEL, "1", "Production")
    controls = registry(MODEL, client=client)
    events_before = len(controls.events)

    controls.stage_dropdowns["3"].value = "Production"
    assert stage("3") == "None" and stage("1") == "Production"  # nothing changed yet
    assert len(client.get_model_history(MODEL)) == events_before
    assert controls.pending == "3" and controls.confirmation.layout.display != "none"
    assert controls.archive_existing.value is True
    assert "(1)" in controls.archive_existing.description
    panel = controls.confirm_metrics.value
    assert "version 3 (candidate)" in panel and "version 1 (Production)" in panel
    for version in ("1", "3"):
        assert f"{models[version]['log_loss']:.4g}" in panel
        assert f"{models[version]['accuracy']:.4g}" in panel

    controls.cancel_button.click()
    assert controls.pending is None and controls.confirmation.layout.display == "none"
    assert controls.stage_dropdowns["3"].value == "None"  # put back
    assert stage("3") == "None" and len(client.get_model_history(MODEL)) == events_before

    controls.stage_dropdowns["3"].value = "Production"
    controls.confirm_comment.value = "lower loss"
    assert stage("3") == "None"
    controls.confirm_button.click()
    assert stage("3") == "Production" and stage("1") == "Archived"
    assert stage_events(controls)[-2:] == [
        ("3", "None", "Production"),
        ("1", "Production", "Archived"),
    ]
    assert controls.events[-1].comment == "lower loss"
    assert [r["stage"] for r in controls.rows] == ["Production", "None", "Archived"]
    assert controls.stage_dropdowns["1"].value == "Archived"
    assert "Production → Archived" in controls.trail.value
    assert controls.pending is None and controls.confirmation.layout.display == "none"


def test_production_without_archiving_and_with_none_in_production(
    models: dict[str, dict[str, float]],
) -> None:
    controls = registry(MODEL)
    controls.stage_dropdowns["1"].value = "Production"
    assert "No version is in Production" in controls.confirm_title.value
    assert "version 1 (candidate)" in controls.confirm_metrics.value
    controls.confirm_button.click()
    assert stage("1") == "Production"

    controls.stage_dropdowns["2"].value = "Production"
    controls.archive_existing.value = False
    controls.confirm_button.click()
    assert stage("2") == "Production" and stage("1") == "Production"  # both serve
    assert stage_events(controls) == [("1", "None", "Production"), ("2", "None", "Production")]


def test_other_change_while_confirming(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    controls.stage_dropdowns["3"].value = "Production"
    controls.stage_dropdowns["2"].value = "Staging"  # applies, the question stays open
    assert stage("2") == "Staging" and stage("3") == "None"
    assert controls.pending == "3" and controls.stage_dropdowns["3"].value == "Production"
    controls.stage_dropdowns["3"].value = "Archived"  # changed its mind: applies at once
    assert controls.pending is None and stage("3") == "Archived"


def test_aliases_add_remove_and_invalid(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    controls.alias_boxes["2"].value = "champion"
    controls.add_buttons["2"].click()
    client = nbtrack.Client()
    assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
    assert controls.rows[1]["aliases"] == ["champion"]
    assert "champion" in controls.remove_buttons["2"]
    assert controls.events[-1].kind == "alias:champion" and controls.events[-1].to_value == "2"
    assert "alias champion" in controls.trail.value

    controls.alias_boxes["3"].value = "champion"  # moves it
    controls.add_buttons["3"].click()
    assert client.get_model_version_by_alias(MODEL, "champion").version == "3"
    assert (controls.events[-1].from_value, controls.events[-1].to_value) == ("2", "3")

    events = len(controls.events)
    for bad in ("v2", "two words", "latest"):
        controls.alias_boxes["1"].value = bad
        controls.add_buttons["1"].click()
        assert "alias" in controls.message.value and "#cf222e" in controls.message.value
        assert "Traceback" not in controls.message.value
        assert controls.alias_boxes["1"].value == bad  # kept, to be fixed
    assert "reserved" in controls.message.value  # the library's own words
    assert len(client.get_model_history(MODEL)) == events
    assert client.get_registered_model(MODEL).aliases == {"champion": "3"}

    controls.remove_buttons["3"]["champion"].click()
    assert client.get_registered_model(MODEL).aliases == {}
    assert controls.rows[0]["aliases"] == [] and controls.remove_buttons["3"] == {}
    assert controls.events[-1].kind == "alias:champion" and controls.events[-1].to_value is None


def test_errors_from_the_client_show_inline(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    nbtrack.Client().delete_registered_model(MODEL, force=True)
    controls.stage_dropdowns["1"].value = "Staging"
    assert "no registered model named &#x27;churn-rf&#x27;" in controls.message.value
    assert [r["version"] for r in controls.rows] == ["3", "2", "1"]  # the last rows stay
    assert controls.stage_dropdowns["1"].value == "None"  # put back
    controls.refresh_button.click()
    assert "no registered model" in controls.message.value

    with pytest.raises(nbtrack.exceptions.RegisteredModelNotFoundError):
        registry("no-such-model")


def test_client_or_tracking_uri(models: dict[str, dict[str, float]], store_dir: Path) -> None:
    assert len(registry(MODEL, tracking_uri=store_dir).rows) == 3
    with pytest.raises(ValueError, match="not both"):
        registry(MODEL, client=nbtrack.Client(), tracking_uri=store_dir)
    with pytest.raises(ValueError, match="'min' or 'max'"):
        registry(MODEL, directions={"accuracy": "up"})


def test_static_html(models: dict[str, dict[str, float]]) -> None:
    controls = registry(MODEL)
    controls.stage_dropdowns["2"].value = "Staging"
    controls.alias_boxes["2"].value = "challenger"
    controls.add_buttons["2"].click()
    bundle = controls._repr_mimebundle_()
    page = bundle["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert page.count("<tr>") >= 1 + 3 + 1  # header, the versions, the trail
    assert "churn-rf" in page and "Staging" in page and "@challenger" in page
    assert "C=0.1" in page and BEST in page and "log_loss" in page
    assert "audit trail" in page and "None → Staging" in page and "alias challenger" in page
    assert bundle["text/plain"] == "RegistryControls('churn-rf', 3 versions)"
