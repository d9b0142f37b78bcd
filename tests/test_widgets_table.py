"""The comparison table and view, driven through widget state as a front end would."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack_widgets import RunTable, compare
from nbtrack_widgets.table import guess_direction


@pytest.fixture
def sweep(store_dir: Path) -> dict[str, str]:
    nbtrack.set_experiment("sweep")
    ids = {}
    for i, (model, lr) in enumerate([("rf", 0.1), ("rf", 0.2), ("gbm", 0.2), ("gbm", 0.4)]):
        with nbtrack.start_run(run_name=f"{model}-{lr}") as run:
            nbtrack.log_params({"model": model, "lr": lr, "seed": 0})
            for step in range(5):
                nbtrack.log_metric("loss", 1.0 / (1 + lr * step) + i * 0.01, step=step)
            nbtrack.log_metric("acc", 0.8 + lr / 2)
        ids[run.info.run_name] = run.info.run_id
    with nbtrack.start_run(run_name="no-metrics"):
        nbtrack.log_params({"model": "dummy", "lr": 0.0, "seed": 0})
    return ids


def names(table: RunTable) -> list[str]:
    return [r["name"] for r in table.sorted_rows()]


def test_rows_columns_and_only_differing_params(sweep: dict[str, str]) -> None:
    table = RunTable(experiment="sweep")
    assert len(table.rows) == 5
    assert table.shown_columns() == [
        "name",
        "status",
        "start",
        "duration",
        "params.lr",
        "params.model",
        "metrics.acc",
        "metrics.loss",
    ]  # seed is the same everywhere: hidden
    table.all_params.value = True
    assert "params.seed" in table.shown_columns()
    assert table.page_label.value == "page 1 of 1 (5 runs)"


def test_sorting_with_missing_values_last(sweep: dict[str, str]) -> None:
    table = RunTable(experiment="sweep")
    table.sort_by.value = "metrics.acc"
    got = names(table)
    assert got[0] == "gbm-0.4" and set(got[1:3]) == {"rf-0.2", "gbm-0.2"}  # a tie at 0.9
    assert got[3:] == ["rf-0.1", "no-metrics"]
    table.descending.value = "ascending"
    assert names(table)[0] == "rf-0.1" and names(table)[-1] == "no-metrics"


def test_filter_box_with_or_and_a_bad_filter(sweep: dict[str, str]) -> None:
    table = RunTable(experiment="sweep")
    table.filter.value = "params.model = 'gbm' OR metrics.acc < 0.86"
    assert sorted(names(table)) == ["gbm-0.2", "gbm-0.4", "rf-0.1"]
    assert table.message.value == ""
    table.filter.value = "metrics.acc >"  # the user is still typing
    assert "missing value" in table.message.value and "^" in table.message.value
    assert sorted(names(table)) == ["gbm-0.2", "gbm-0.4", "rf-0.1"]  # the last good result stays


def test_a_bad_first_filter_shows_its_message_in_an_empty_table(sweep: dict[str, str]) -> None:
    view = compare(experiment="sweep", filter_string="metrics.acc >")
    table = view.table
    assert "missing value" in table.message.value and table.rows == []
    assert table.shown_columns() == ["name", "status", "start", "duration"]
    bundle = view._repr_mimebundle_()  # as a notebook displays it: no AttributeError
    assert "missing value" in bundle["text/html"] and "<table>" in bundle["text/html"]
    assert bundle["text/plain"] == "Comparison(0 runs)"
    table.filter.value = "metrics.acc > 0.9"  # fixed: the runs appear, the message goes
    assert names(table) == ["gbm-0.4"] and table.message.value == ""
    assert "missing value" not in table.to_html()


def test_best_values_are_marked_by_guessed_or_given_direction(sweep: dict[str, str]) -> None:
    assert guess_direction("val_loss") == "min" and guess_direction("f1") == "max"
    table = RunTable(experiment="sweep")
    best = table.best()
    assert best["metrics.acc"] == sweep["gbm-0.4"]
    assert best["metrics.loss"] == sweep["gbm-0.4"]  # lowest final loss
    flipped = RunTable(experiment="sweep", directions={"acc": "min"})
    assert flipped.best()["metrics.acc"] == sweep["rf-0.1"]
    cells = [
        c.value for c in table.grid.children if hasattr(c, "value") and "dafbe1" in str(c.value)
    ]
    assert len(cells) == 2
    with pytest.raises(ValueError, match="'min' or 'max'"):
        RunTable(experiment="sweep", directions={"acc": "up"})


def test_ticking_rows_selects_runs_and_draws_their_curves(sweep: dict[str, str]) -> None:
    view = compare(experiment="sweep", metrics=["loss"])
    assert view.curves is None
    view.table.checkboxes[sweep["rf-0.1"]].value = True
    view.table.checkboxes[sweep["gbm-0.4"]].value = True
    assert view.table.selected_run_ids == [sweep["rf-0.1"], sweep["gbm-0.4"]]
    assert view.curves is not None
    assert sorted(t.name for t in view.curves.figure.data) == ["gbm-0.4", "rf-0.1"]
    view.table.checkboxes[sweep["rf-0.1"]].value = False
    assert [t.name for t in view.curves.figure.data] == ["gbm-0.4"]
    view.table.checkboxes[sweep["gbm-0.4"]].value = False
    assert view.curves is None


def test_paging(sweep: dict[str, str]) -> None:
    table = RunTable(experiment="sweep", page_size=2)
    assert table.page_label.value == "page 1 of 3 (5 runs)"
    first = [r["name"] for r in table.page_rows()]
    table.next_button.click()
    assert table.page == 1 and [r["name"] for r in table.page_rows()] != first
    table.next_button.click()
    table.next_button.click()
    assert table.page == 2
    table.prev_button.click()
    assert table.page == 1


def test_static_fallback_and_bad_arguments(sweep: dict[str, str]) -> None:
    view = compare(experiment="sweep")
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table>" in bundle["text/html"] and "gbm-0.4" in bundle["text/html"]
    with pytest.raises(ValueError, match="experiment="):
        RunTable()
    with pytest.raises(nbtrack.exceptions.ExperimentNotFoundError):
        RunTable(experiment="nope")


def test_a_table_of_given_run_ids(sweep: dict[str, str]) -> None:
    table = RunTable(run_ids=[sweep["rf-0.1"], sweep["gbm-0.2"]])
    assert sorted(names(table)) == ["gbm-0.2", "rf-0.1"]
