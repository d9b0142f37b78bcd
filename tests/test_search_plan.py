"""Where a search starts (nbtrack.store.plan): from the runs of the experiments searched, or
from the runs that have a param value the filter requires; the result is the same either way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

import nbtrack
from nbtrack.store import plan


def _fill(experiment: str, runs: int, params: dict[str, object]) -> list[str]:
    """``runs`` finished runs in ``experiment``; each param value may be a function of i."""
    client = nbtrack.Client()
    exp_id = client.get_experiment_by_name(experiment)
    exp = exp_id.experiment_id if exp_id else client.create_experiment(experiment)
    ids = []
    for i in range(runs):
        run_id = client.create_run(exp, run_name=f"{experiment}-{i}").info.run_id
        values = {k: (v(i) if callable(v) else v) for k, v in params.items()}
        client.log_batch(
            run_id,
            metrics=[nbtrack.Metric("acc", (i % 7) / 7, 0, 0)],
            params=[nbtrack.Param(k, str(v)) for k, v in values.items()],
        )
        client.set_terminated(run_id)
        ids.append(run_id)
    return ids


_WATCHERS: list[list[str]] = []


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL the store runs inside the block (blocks may nest: each sees it all)."""
    seen: list[str] = []
    conn = nbtrack.Client().store.conn
    if not _WATCHERS:
        conn.set_trace_callback(lambda sql: [w.append(sql) for w in _WATCHERS])
    _WATCHERS.append(seen)
    try:
        yield seen
    finally:
        _WATCHERS.remove(seen)
        if not _WATCHERS:
            conn.set_trace_callback(None)


def _search(
    experiment: str, filter_string: str, max_results: int = 100_000, ordered: bool = True
) -> tuple[list[str], str]:
    """The run ids found, in order, and the search statement that found them."""
    with _statements() as seen:
        frame = nbtrack.search_runs(
            experiment_names=[experiment],
            filter_string=filter_string,
            order_by=["metrics.acc DESC", "params.i"] if ordered else None,
            max_results=max_results,
        )
    statement = next(s for s in seen if s.startswith("SELECT r.run_id, r.experiment_id"))
    return list(frame["run_id"]), statement


def _first_step(statement: str) -> str:
    """How SQLite's plan for the statement starts, e.g. 'SEARCH r USING INDEX ...'."""
    plan = nbtrack.Client().store.query(f"EXPLAIN QUERY PLAN {statement}")
    return str(plan[0][3])


def _search_without_probing(experiment: str, filter_string: str) -> list[str]:
    with mock.patch.object(plan, "MIN_RUNS_TO_PROBE", 10**9):
        ids, statement = _search(experiment, filter_string)
    assert "params_by_value" not in statement
    return ids


@pytest.fixture
def store(store_dir: Path) -> Path:
    _fill("big", 400, {"i": lambda i: i, "model": lambda i: "rf" if i % 10 == 3 else "svm",
                       "seed": 1, "shared": lambda i: "yes" if i % 20 == 0 else "no"})  # fmt: skip
    _fill("other", 300, {"i": lambda i: i, "model": "xgb", "seed": 1, "shared": "yes"})
    nbtrack.flush()
    return store_dir


def test_a_rare_param_value_is_where_the_search_starts(store: Path) -> None:
    ids, statement = _search("big", "params.model = 'rf' AND metrics.acc > 0.2")
    assert "FROM params k0 INDEXED BY params_by_value CROSS JOIN runs r" in statement
    assert _first_step(statement).startswith("SEARCH k0 USING COVERING INDEX params_by_value")
    assert len(ids) == sum(1 for i in range(400) if i % 10 == 3 and (i % 7) / 7 > 0.2)
    assert ids == _search_without_probing("big", "params.model = 'rf' AND metrics.acc > 0.2")


def test_the_rarest_of_several_param_values_is_chosen(store: Path) -> None:
    text = "params.seed = '1' AND params.model IN ('rf', 'lgbm') AND params.i != '3'"
    ids, statement = _search("big", text)
    assert "FROM params k1 INDEXED BY params_by_value" in statement  # model, not seed
    assert len(ids) == 39
    assert ids == _search_without_probing("big", text)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("params.seed = '1'", 400),  # every run has it
        ("params.shared = 'yes'", 20),  # rare in 'big', but every run of 'other' has it
    ],
)
def test_a_value_common_in_the_store_keeps_the_search_in_its_experiment(
    store: Path, text: str, found: int
) -> None:
    """Through the param index the search would look at more runs than 'big' holds."""
    ids, statement = _search("big", text)
    assert "params_by_value" not in statement
    assert "runs_by_experiment" in _first_step(statement)
    assert len(ids) == found


def test_a_param_inside_an_or_is_not_a_starting_point(store: Path) -> None:
    ids, statement = _search("big", "params.model = 'rf' OR metrics.acc > 0.9")
    assert "params_by_value" not in statement
    assert len(ids) == 40


def test_small_searches_are_not_planned(store_dir: Path) -> None:
    _fill("small", 20, {"i": lambda i: i, "model": lambda i: "rf" if i == 5 else "svm"})
    with _statements() as seen:
        frame = nbtrack.search_runs(experiment_names=["small"], filter_string="params.model='rf'")
    assert list(frame["run_name"]) == ["small-5"]
    assert not any("params_by_value" in s for s in seen)


def test_paging_through_a_search_that_starts_from_a_param(store: Path) -> None:
    client = nbtrack.Client()
    exp = client.get_experiment_by_name("big").experiment_id
    pages, token = [], None
    while True:
        page = client.search_runs(
            [exp], "params.model = 'rf'", max_results=15, order_by=["params.i"],
            page_token=token,
        )  # fmt: skip
        pages.extend(run.data.params["i"] for run in page)
        token = page.token
        if not token:
            break
    assert pages == sorted((str(i) for i in range(3, 400, 10)), key=str)


def test_a_short_page_in_time_order_reads_the_newest_runs_first(store: Path) -> None:
    """The first runs in the default order come straight from the experiment index, which
    stops at the page's end; the counts stop there too."""
    with _statements() as seen:
        ids, statement = _search("big", "params.model = 'rf'", max_results=10, ordered=False)
    counts = [s for s in seen if s.startswith("SELECT count(*)")]
    assert counts and all(s.endswith(("LIMIT 10)", "LIMIT 11)")) for s in counts), counts
    assert "params_by_value" not in statement
    assert "runs_by_experiment" in _first_step(statement)
    assert len(ids) == 10
    everything, _ = _search("big", "params.model = 'rf'", ordered=False)
    assert ids == everything[:10]


def test_a_short_page_in_time_order_of_a_value_only_older_runs_have_starts_from_it(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 of 300 runs have model = 'old', the oldest ones: reading the newest runs first would
    go through the other 270 to fill a page of 10. A value spread over time is still read in
    time order."""
    _fill("aged", 300, {"i": lambda i: i, "model": lambda i: "old" if i < 30 else "new",
                        "parity": lambda i: str(i % 2)})  # fmt: skip
    nbtrack.flush()
    monkeypatch.setattr(plan, "NEWEST_RUNS_LOOKED_AT", 50)
    ids, statement = _search("aged", "params.model = 'old'", max_results=10, ordered=False)
    assert "FROM params k0 INDEXED BY params_by_value CROSS JOIN runs r" in statement
    everything, _ = _search("aged", "params.model = 'old'", ordered=False)
    assert len(everything) == 30 and ids == everything[:10]
    for spread in ("params.model = 'new'", "params.parity = '1'"):
        ids, statement = _search("aged", spread, max_results=10, ordered=False)
        assert "params_by_value" not in statement, spread
        assert "runs_by_experiment" in _first_step(statement)
        everything, _ = _search("aged", spread, ordered=False)
        assert ids == everything[:10]


def test_a_long_page_in_time_order_of_a_rare_value_starts_from_it(store: Path) -> None:
    ids, statement = _search("big", "params.model = 'rf'", ordered=False)
    assert "CROSS JOIN runs r" in statement
    assert len(ids) == 40


def test_a_filter_on_run_id_still_finds_the_run_by_its_key(store: Path) -> None:
    run_id = nbtrack.search_runs(experiment_names=["big"], max_results=1)["run_id"][0]
    for text in (f"attributes.run_id = '{run_id}'",
                 f"attributes.run_id = '{run_id}' AND params.seed IN ('1', '2')"):  # fmt: skip
        ids, statement = _search("big", text)
        assert ids == [run_id]
        assert "sqlite_autoindex_runs_1" in _first_step(statement)


def test_a_long_in_list_is_not_a_starting_point(store: Path) -> None:
    values = ", ".join(["'rf'"] + [f"'x{i}'" for i in range(plan.MAX_PROBE_VALUES)])
    ids, statement = _search("big", f"params.model IN ({values})")
    assert "params_by_value" not in statement
    assert len(ids) == 40


def _start_time_of_newest(experiment: str, rank: int) -> int:
    runs = nbtrack.search_runs(experiment_names=[experiment], max_results=rank)
    return int(runs["start_time"].iloc[-1].value // 1_000_000)  # ns -> ms


@pytest.mark.parametrize("ordered", [False, True])
def test_a_start_time_range_keeps_the_search_on_the_experiment_index(
    store: Path, ordered: bool
) -> None:
    """The newest runs come from the experiment index's time range: 40 runs of 'rf' in the
    store are not fewer than half the runs the range holds."""
    since = _start_time_of_newest("big", 30)
    text = f"params.model = 'rf' AND attributes.start_time >= {since}"
    with _statements() as seen:
        ids, statement = _search("big", text, ordered=ordered)
    assert "params_by_value" not in statement
    assert not any("FROM params INDEXED BY params_by_value" in s for s in seen)  # not counted
    assert ids == _search_without_probing("big", text) if ordered else len(ids) <= 30


def test_run_ids_inside_an_or_keep_the_search_on_the_runs_key(store: Path) -> None:
    first, second = nbtrack.search_runs(experiment_names=["big"], max_results=2)["run_id"]
    text = f"(attributes.run_id = '{first}' OR attributes.run_id = '{second}')"
    with _statements() as seen:
        ids, statement = _search("big", f"{text} AND params.seed = '1'")
    assert sorted(ids) == sorted([first, second])
    assert "params_by_value" not in statement
    assert not any("FROM params INDEXED BY params_by_value" in s for s in seen)


@pytest.mark.parametrize("experiments", [["big"], ["big", "other"]])
def test_a_short_page_of_a_rare_value_starts_from_it(
    store: Path, experiments: list[str]
) -> None:
    """Two runs in the store have i = 123; reading the newest runs first would go through
    every run to find them."""
    with _statements() as seen:
        frame = nbtrack.search_runs(
            experiment_names=experiments, filter_string="params.i = '123'", max_results=5
        )
    statement = next(s for s in seen if s.startswith("SELECT r.run_id, r.experiment_id"))
    assert "CROSS JOIN runs r" in statement
    assert sorted(frame["run_name"]) == sorted(f"{e}-123" for e in experiments)


def test_a_status_is_not_counted(store: Path) -> None:
    """Counting the runs of one status would read every run's row: the count leaves it out,
    and the search still filters on it."""
    with _statements() as seen:
        ids, _ = _search("big", "params.model = 'rf' AND attributes.status = 'FINISHED'")
    counts = [s for s in seen if s.startswith("SELECT count(*) FROM (SELECT 1 FROM runs r")]
    assert counts and not any("status" in s for s in counts)
    assert len(ids) == 40
    assert ids == _search_without_probing(
        "big", "params.model = 'rf' AND attributes.status = 'FINISHED'"
    )
