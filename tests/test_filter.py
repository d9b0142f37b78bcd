"""Tests of the filter language: parsing, formatting, compilation to SQL and its execution."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrack.exceptions import FilterSyntaxError
from nbtrack.query.filter import (
    BoolOp,
    Comparison,
    FilterNode,
    OrderKey,
    format_filter,
    parse_filter,
    parse_order_by,
)
from nbtrack.query.sql import MAX_JOINS, compile_search, like_to_glob
from nbtrack.store.plan import search_source
from nbtrack.store.schema import COLUMN_TAGS, MIGRATIONS
from nbtrack.tracking.context import MLFLOW_TAGS

NAN = math.nan
INF = math.inf
ALL = {"r1", "r2", "r3", "r4", "r5"}
TABLES = {
    "experiments", "experiment_tags", "runs", "params", "metric_blocks", "latest_metrics", "tags"
}
HOSTILE = "' OR 1=1 --"

# run_id, run_name, status, start_time, end_time, user, artifact_uri
RUNS = [
    ("r1", "alpha", "FINISHED", 1000, 2000, "alice", "file:///a/r1"),
    ("r2", "beta", "FAILED", 2000, 3000, "bob", "file:///a/r2"),
    ("r3", "Gamma", "RUNNING", 3000, None, "alice", "s3://bucket/r3"),
    ("r4", "delta_1", "FINISHED", 4000, 5000, "carol", "file:///a/r4"),
    ("r5", "epsilon", "KILLED", 5000, 6000, None, None),
]
# latest metric values; None is NaN, an absent entry a missing metric
METRICS: dict[str, dict[str, float | None]] = {
    "acc": {"r1": 0.9, "r2": 0.5, "r3": None, "r4": INF},
    "loss": {"r1": 0.1, "r2": 0.2, "r3": 0.3, "r4": -INF, "r5": 0.05},
    "f1 score": {"r1": 0.8, "r2": 0.7},
    "a.b": {"r3": 1.0},
}
PARAMS: dict[str, dict[str, str]] = {
    "model": {"r1": "rf", "r2": "svm", "r3": "RF", "r4": "rf_v2"},
    "lr": {"r1": "0.01", "r2": "0.1", "r3": "0.01", "r4": "1e-3", "r5": "0.001"},
    "pattern": {"r1": "a%b", "r2": "a_b", "r3": "a*b", "r4": "a[b]", "r5": "ab"},
    "my key": {"r2": "v"},
}
TAGS: dict[str, dict[str, str]] = {
    "team": {"r1": "ML-core", "r2": "data", "r3": "ml", "r4": "Mlops"},
    "weird key": {"r3": "x"},
    "note": {"r5": HOSTILE},
}


def _build(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    # The store's function makes a relative artifact_uri absolute; these rows hold absolute ones.
    conn.create_function("nbtrack_artifact_uri", 1, lambda stored: stored, deterministic=True)
    for migration in MIGRATIONS:
        migration(conn)
    conn.execute(
        "INSERT INTO experiments (experiment_id, name, creation_time, last_update_time)"
        " VALUES (1, 'default', 0, 0)"
    )
    for run_id, name, status, start, end, user, uri in RUNS:
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time,"
            " user, artifact_uri) VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
            (run_id, name, status, start, end, user, uri),
        )
    for key, metric_values in METRICS.items():
        for run_id, value in metric_values.items():
            conn.execute(
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp)"
                " VALUES (?, ?, ?, 0, 0)",
                (run_id, key, value),
            )
    for table, rows in (("params", PARAMS), ("tags", TAGS)):
        for key, text_values in rows.items():
            for run_id, text in text_values.items():
                conn.execute(
                    f"INSERT INTO {table} (run_id, key, value) VALUES (?, ?, ?)",
                    (run_id, key, text),
                )
    conn.commit()
    return conn


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = _build(tmp_path_factory.mktemp("filter") / "store.db")
    yield conn
    conn.close()


def run_query(
    conn: sqlite3.Connection,
    filter_string: str,
    order_by: Sequence[str] | str | None = None,
) -> list[str]:
    sql, args = compiled(parse_filter(filter_string), parse_order_by(order_by))
    return [row[0] for row in conn.execute(sql, args)]


def compiled(
    node: FilterNode | None, order_keys: Sequence[OrderKey] = ()
) -> tuple[str, list[object]]:
    """The whole query a filter and order keys compile to, and its args."""
    q = compile_search(node, order_keys)
    sql = f"SELECT r.run_id FROM runs r {q.joins} WHERE {q.where} ORDER BY {q.order}"
    return sql, [*q.join_args, *q.where_args, *q.order_args]


def assert_intact(conn: sqlite3.Connection) -> None:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == len(RUNS)
    assert conn.execute("SELECT count(*) FROM params").fetchone()[0] == sum(
        len(v) for v in PARAMS.values()
    )


# --------------------------------------------------------------------------- matching


MATCH_CASES: list[tuple[str, set[str]]] = [
    # metrics: every operator, NaN (stored as NULL), +-inf, a run missing the key (r5 for acc)
    ("metrics.acc > 0.6", {"r1", "r4"}),
    ("metrics.acc >= 0.9", {"r1", "r4"}),
    ("metrics.acc < 0.9", {"r2"}),
    ("metrics.acc <= 0.9", {"r1", "r2"}),
    ("metrics.acc = 0.5", {"r2"}),
    ("metrics.acc == 0.5", {"r2"}),
    ("metrics.acc != 0.5", {"r1", "r3", "r4"}),  # r3's NaN differs from 0.5
    ("metrics.acc <> 0.5", {"r1", "r3", "r4"}),
    ("metrics.acc = NaN", {"r3"}),
    ("metrics.acc = nan", {"r3"}),
    ("metrics.acc != NaN", {"r1", "r2", "r4"}),
    ("metrics.acc > NaN", set()),
    ("metrics.acc <= NaN", set()),
    ("metrics.acc = inf", {"r4"}),
    ("metrics.acc >= +inf", {"r4"}),
    ("metrics.acc < inf", {"r1", "r2"}),
    ("metrics.loss = -inf", {"r4"}),
    ("metrics.loss < -1e300", {"r4"}),
    ("metrics.loss > -inf", {"r1", "r2", "r3", "r5"}),
    ("metrics.loss < 1.5e-1", {"r1", "r4", "r5"}),
    ("metrics.loss > 0", {"r1", "r2", "r3", "r5"}),
    ("metrics.loss >= .2", {"r2", "r3"}),
    ("metrics.acc IS NULL", {"r5"}),
    ("metrics.acc IS NOT NULL", {"r1", "r2", "r3", "r4"}),
    ("metrics.`f1 score` > 0.75", {"r1"}),
    ('metrics."f1 score" >= 0.7', {"r1", "r2"}),
    ("metrics.a.b = 1", {"r3"}),
    ("metric.`a.b` = 1.0", {"r3"}),
    ("METRICS.acc > 0.6", {"r1", "r4"}),
    ("metrics.nope > 0", set()),
    ("metrics.nope != 0", set()),
    # params: a run lacking the key (r5 for model) never matches, not even !=
    ("params.model = 'rf'", {"r1"}),
    ('params.model = "rf"', {"r1"}),
    ("params.model != 'rf'", {"r2", "r3", "r4"}),
    ("params.model LIKE 'rf%'", {"r1", "r4"}),
    ("params.model ILIKE 'rf%'", {"r1", "r3", "r4"}),
    ("params.model like 'r_'", {"r1"}),
    ("params.model ilike 'r_'", {"r1", "r3"}),
    ("params.model LIKE 'RF'", {"r3"}),
    ("params.model IN ('rf', 'svm')", {"r1", "r2"}),
    ("params.model in ('RF')", {"r3"}),
    ("params.model NOT IN ('rf', 'svm')", {"r3", "r4"}),
    ("params.model not in ('nothing')", {"r1", "r2", "r3", "r4"}),
    ("params.model IS NULL", {"r5"}),
    ("params.model is not null", {"r1", "r2", "r3", "r4"}),
    ("param.lr = '0.01'", {"r1", "r3"}),
    ("params.\"my key\" = 'v'", {"r2"}),
    ('params.`my key` = "v"', {"r2"}),
    ("params.`my key` != 'v'", set()),
    # LIKE wildcards against data holding LIKE and GLOB metacharacters
    ("params.pattern = 'a%b'", {"r1"}),
    ("params.pattern LIKE 'a%b'", {"r1", "r2", "r3", "r5"}),
    ("params.pattern LIKE 'a_b'", {"r1", "r2", "r3"}),
    ("params.pattern LIKE 'a*b'", {"r3"}),
    ("params.pattern LIKE 'a?b'", set()),
    ("params.pattern LIKE 'a[b]'", {"r4"}),
    ("params.pattern LIKE '%[%'", {"r4"}),
    ("params.pattern LIKE '%]'", {"r4"}),
    ("params.pattern ILIKE 'A_B'", {"r1", "r2", "r3"}),
    ("params.pattern ILIKE 'a[b]'", {"r4"}),
    # tags
    ("tags.team = 'ml'", {"r3"}),
    ("tags.team != 'ml'", {"r1", "r2", "r4"}),
    ("tags.team LIKE '%ml%'", {"r3"}),
    ("tags.team ILIKE '%ml%'", {"r1", "r3", "r4"}),
    ("tags.team LIKE 'M%'", {"r1", "r4"}),
    ("tags.team IN ('data', 'ml')", {"r2", "r3"}),
    ("tags.team NOT IN ('data', 'ml')", {"r1", "r4"}),
    ("tags.team IS NULL", {"r5"}),
    ("tags.team IS NOT NULL", {"r1", "r2", "r3", "r4"}),
    # a reserved tag that the run's row holds (its user column)
    ("tags.nbtrack.user = 'alice'", {"r1", "r3"}),
    ("tag.`nbtrack.user` != 'alice'", {"r2", "r4"}),
    ("tags.mlflow.user = 'bob'", {"r2"}),
    ("tags.nbtrack.runName LIKE '%a'", {"r1", "r2", "r3"}),
    ("tags.`weird key` = 'x'", {"r3"}),
    # attributes, with and without prefix, and their aliases
    ("status = 'FINISHED'", {"r1", "r4"}),
    ("attributes.status != 'FINISHED'", {"r2", "r3", "r5"}),
    ("attribute.status IN ('FAILED', 'KILLED')", {"r2", "r5"}),
    ("attr.status NOT IN ('FAILED', 'KILLED')", {"r1", "r3", "r4"}),
    ("run.run_id = 'r2'", {"r2"}),
    ("run_id IN ('r1', 'r5', 'zz')", {"r1", "r5"}),
    ("run_name LIKE '%a'", {"r1", "r2", "r3"}),
    ("run_name LIKE 'g%'", set()),
    ("run_name ILIKE 'g%'", {"r3"}),
    ("run_name LIKE 'delta_1'", {"r4"}),
    ("attributes.start_time > 2000", {"r3", "r4", "r5"}),
    ("attributes.start_time >= 2000", {"r2", "r3", "r4", "r5"}),
    ("start_time < 2000", {"r1"}),
    ("start_time <= 2000", {"r1", "r2"}),
    ("start_time = 3000", {"r3"}),
    ("start_time != 3000", {"r1", "r2", "r4", "r5"}),
    ("start_time > 2.5e3", {"r3", "r4", "r5"}),
    ("created >= 4000", {"r4", "r5"}),
    ("attributes.created < 1500.5", {"r1"}),
    ("end_time < 3000", {"r1"}),
    ("end_time != 2000", {"r2", "r4", "r5"}),
    ("end_time IS NULL", {"r3"}),
    ("end_time IS NOT NULL", {"r1", "r2", "r4", "r5"}),
    ("user_id = 'alice'", {"r1", "r3"}),
    ("attributes.user = 'bob'", {"r2"}),
    ("user_id != 'alice'", {"r2", "r4"}),
    ("artifact_uri LIKE 'file://%'", {"r1", "r2", "r4"}),
    ("STATUS = 'FINISHED'", {"r1", "r4"}),
    # AND / OR / parentheses / precedence
    ("metrics.acc > 0.6 AND params.model = 'rf'", {"r1"}),
    ("metrics.acc > 0.6 and params.model = 'rf'", {"r1"}),
    ("params.model = 'svm' OR params.model = 'RF'", {"r2", "r3"}),
    ("params.model = 'svm' or params.model = 'RF'", {"r2", "r3"}),
    ("params.model = 'svm' OR params.model = 'RF' AND metrics.loss > 0.25", {"r2", "r3"}),
    ("params.model = 'svm' OR params.model = 'RF' AND metrics.loss > 0.35", {"r2"}),
    ("(params.model = 'svm' OR params.model = 'RF') AND metrics.loss > 0.25", {"r3"}),
    ("metrics.loss > 0.25 AND params.model = 'RF' OR params.model = 'svm'", {"r2", "r3"}),
    ("metrics.loss > 0.25 AND (params.model = 'rf' OR params.model = 'svm')", set()),
    ("((metrics.acc > 0.6))", {"r1", "r4"}),
    (
        "metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE '%ml%')",
        {"r4"},
    ),
    (
        "(status = 'FINISHED' OR status = 'FAILED') AND (tags.team = 'data' OR run_id = 'r4')",
        {"r2", "r4"},
    ),
    ("status = 'RUNNING' OR status = 'KILLED' OR metrics.acc = inf", {"r3", "r4", "r5"}),
    ("", ALL),
    ("   \n\t", ALL),
]


@pytest.mark.parametrize(("filter_string", "expected"), MATCH_CASES)
def test_filter_matches(db: sqlite3.Connection, filter_string: str, expected: set[str]) -> None:
    assert set(run_query(db, filter_string)) == expected


def test_parse_tree_shape() -> None:
    node = parse_filter("metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE '%ml%')")
    assert node == BoolOp(
        "AND",
        (
            Comparison("metric", "acc", ">", 0.9),
            BoolOp(
                "OR",
                (
                    Comparison("param", "model", "=", "rf"),
                    Comparison("tag", "team", "ILIKE", "%ml%"),
                ),
            ),
        ),
    )
    node = parse_filter("tags.a.b = 'x' or run_id = 'r' AND user = 'u'")
    assert node == BoolOp(
        "OR",
        (
            Comparison("tag", "a.b", "=", "x"),
            BoolOp(
                "AND",
                (
                    Comparison("attribute", "run_id", "=", "r"),
                    Comparison("attribute", "user_id", "=", "u"),
                ),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.x == 1", Comparison("metric", "x", "=", 1.0)),
        ("metrics.x <> -2.5e-3", Comparison("metric", "x", "!=", -2.5e-3)),
        ("metrics.x is null", Comparison("metric", "x", "IS NULL", None)),
        ("params.x Is Not NuLL", Comparison("param", "x", "IS NOT NULL", None)),
        ("params.x not in ('a')", Comparison("param", "x", "NOT IN", ("a",))),
        ("created > 5", Comparison("attribute", "start_time", ">", 5)),
        ("user = 'u'", Comparison("attribute", "user_id", "=", "u")),
        ("attributes.RUN_NAME = 'n'", Comparison("attribute", "run_name", "=", "n")),
        ("params.x = 'it''s'", Comparison("param", "x", "=", "it's")),
        ('params.x = "say ""hi"""', Comparison("param", "x", "=", 'say "hi"')),
        ("params.x = 'a\\'b\\\"c\\\\d'", Comparison("param", "x", "=", "a'b\"c\\d")),
        ("params.x = 'back\\slash'", Comparison("param", "x", "=", "back\\slash")),
        ("params.x = ''", Comparison("param", "x", "=", "")),
        ("metrics.`a ``b`` c` > 1", Comparison("metric", "a `b` c", ">", 1.0)),
        ("metrics.`a.b c/d` > 1", Comparison("metric", "a.b c/d", ">", 1.0)),
        ("tags.mlflow.source-name/x = 'y'", Comparison("tag", "mlflow.source-name/x", "=", "y")),
        ("params.x IN('a','b')", Comparison("param", "x", "IN", ("a", "b"))),
        ("metrics.x>=-inf", Comparison("metric", "x", ">=", -INF)),
        ("metrics.x < Infinity", Comparison("metric", "x", "<", INF)),
        ("start_time > 1700000000000", Comparison("attribute", "start_time", ">", 1700000000000)),
        # a backquoted prefix, as MLflow accepts it
        ("`metrics`.acc > 0.5", Comparison("metric", "acc", ">", 0.5)),
        ("`params`.`batch size` = '3'", Comparison("param", "batch size", "=", "3")),
        ("`tags`.\"team\" = 'a'", Comparison("tag", "team", "=", "a")),
        # keys in any script's letters and digits need no backquotes, as in MLflow
        ("params.métrica = '1'", Comparison("param", "métrica", "=", "1")),
        ("metrics.損失 > 0", Comparison("metric", "損失", ">", 0.0)),
        ("tags.ß_2 = 'x'", Comparison("tag", "ß_2", "=", "x")),
    ],
)
def test_parse_comparisons(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


def test_parse_nan_and_empty() -> None:
    node = parse_filter("metrics.x = NaN")
    assert isinstance(node, Comparison)
    assert isinstance(node.value, float) and math.isnan(node.value)
    assert parse_filter("") is None
    assert parse_filter("  \t ") is None
    q = compile_search(None)
    assert (q.joins, q.where, q.order) == ("", "1", "r.start_time DESC, r.run_id")


def test_like_to_glob() -> None:
    assert like_to_glob("a%b_c*[d]?") == "a*b?c[*][[]d][?]"
    assert like_to_glob("") == ""
    assert like_to_glob("plain") == "plain"


# --------------------------------------------------------------------------- ordering


ORDER_CASES: list[tuple[list[str] | str | None, list[str]]] = [
    (None, ["r5", "r4", "r3", "r2", "r1"]),
    ([], ["r5", "r4", "r3", "r2", "r1"]),
    # acc: r1 0.9, r2 0.5, r3 NaN, r4 inf, r5 missing -> then NaN, then missing (as MLflow)
    (["metrics.acc ASC"], ["r2", "r1", "r4", "r3", "r5"]),
    (["metrics.acc"], ["r2", "r1", "r4", "r3", "r5"]),
    (["metrics.acc DESC"], ["r4", "r1", "r2", "r3", "r5"]),
    ("metrics.loss desc", ["r3", "r2", "r1", "r5", "r4"]),
    (["params.model"], ["r3", "r1", "r4", "r2", "r5"]),
    (["params.model DESC"], ["r2", "r4", "r1", "r3", "r5"]),
    (["tags.team DESC"], ["r3", "r2", "r4", "r1", "r5"]),
    (["tags.team ASC"], ["r1", "r4", "r2", "r3", "r5"]),
    (["start_time"], ["r1", "r2", "r3", "r4", "r5"]),
    (["attributes.start_time ASC"], ["r1", "r2", "r3", "r4", "r5"]),
    (["created DESC"], ["r5", "r4", "r3", "r2", "r1"]),
    (["run_name desc"], ["r5", "r4", "r2", "r1", "r3"]),
    (["end_time ASC"], ["r1", "r2", "r4", "r5", "r3"]),
    (["end_time DESC"], ["r5", "r4", "r2", "r1", "r3"]),
    (["user_id"], ["r3", "r1", "r2", "r4", "r5"]),
    (["metrics.`f1 score` DESC", "start_time DESC"], ["r1", "r2", "r5", "r4", "r3"]),
    ("metrics.`f1 score` DESC, start_time", ["r1", "r2", "r3", "r4", "r5"]),
    (["tags.nbtrack.user desc", "  ", "run_id DESC"], ["r4", "r2", "r3", "r1", "r5"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDER_CASES)
def test_order_by(
    db: sqlite3.Connection, order_by: list[str] | str | None, expected: list[str]
) -> None:
    assert run_query(db, "", order_by) == expected


def test_order_by_metric_past_the_joins(db: sqlite3.Connection) -> None:
    """With every join spent, a metric's order key is a subquery: still NaN before missing."""
    absent = [f"metrics.absent{i}" for i in range(MAX_JOINS)]
    assert run_query(db, "", [*absent, "metrics.acc"]) == ["r2", "r1", "r4", "r3", "r5"]
    assert run_query(db, "", [*absent, "metrics.acc DESC"]) == ["r4", "r1", "r2", "r3", "r5"]


def test_order_by_with_filter(db: sqlite3.Connection) -> None:
    assert run_query(db, "metrics.loss > 0", ["metrics.loss DESC"]) == ["r3", "r2", "r1", "r5"]


def test_parse_order_by_values() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by("") == []
    assert parse_order_by(["metrics.acc DESC", "params.lr", "run_name desc"]) == [
        OrderKey("metric", "acc", False),
        OrderKey("param", "lr", True),
        OrderKey("attribute", "run_name", False),
    ]
    assert parse_order_by("tags.`a b` asc, created") == [
        OrderKey("tag", "a b", True),
        OrderKey("attribute", "start_time", True),
    ]
    q = compile_search(None, [OrderKey("metric", "acc", False)])
    assert q.join_args == ["acc"] and q.order_args == []
    assert q.order == (
        "k0.value IS NULL, k0.key IS NULL, k0.value DESC, r.start_time DESC, r.run_id"
    )
    assert compile_search(None, []).order == "r.start_time DESC, r.run_id"


def test_equality_joins_are_probed_first_and_sort_only_joins_last(db: sqlite3.Connection) -> None:
    """SQLite probes the tables in the order written here: ``=`` / ``IN`` comparisons, which
    usually reject most runs, before ranges, and the joins only sorted on after both."""
    node = parse_filter("metrics.acc > 0.5 AND params.model = 'rf'")
    q = compile_search(node, parse_order_by("metrics.loss DESC"))
    assert q.join_args == ["model", "acc", "loss"]
    sql = (  # as the store runs it: the runs of one experiment, driven by its index
        f"SELECT r.run_id FROM runs r {q.joins} WHERE r.experiment_id IN (?) AND"
        f" r.lifecycle_stage IN (?) AND ({q.where}) ORDER BY {q.order}"
    )
    args = [*q.join_args, 0, "active", *q.where_args, *q.order_args]
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args)]
    probes = [step.split()[1] for step in plan if step.startswith("SEARCH k")]
    assert probes == ["k1", "k0", "k2"]  # params.model, then metrics.acc, then the sort key
    assert run_query(db, "metrics.acc > 0.5 AND params.model = 'rf'", "metrics.loss DESC") == (
        run_query(db, "params.model = 'rf' AND metrics.acc > 0.5", "metrics.loss DESC")
    )


# --------------------------------------------------------------------------- errors


ERROR_CASES: list[tuple[str, int, tuple[str, ...]]] = [
    ("foo.bar = 1", 0, ("unknown prefix", "metrics.", "params.", "tags.")),
    ("metrics.acc", 11, ("missing operator",)),
    ("metrics.acc 0.9", 12, ("operator", "'0.9'")),
    ("metrics.acc >", 13, ("missing value",)),
    ("params.model =   ", 17, ("missing value",)),
    ("(metrics.acc > 1", 16, ("never closed",)),
    ("((metrics.acc > 1)", 18, ("never closed",)),
    ("metrics.acc > 1)", 15, ("unbalanced",)),
    ("()", 1, ("empty parentheses",)),
    ("(metrics.acc > 1 foo", 17, ("expected ')'",)),
    ("metrics.acc > 1 foo", 16, ("AND, OR",)),
    ("metrics.acc > 1 AND", 19, ("expected a comparison", "end of the text")),
    ("metrics.acc > 1 AND OR metrics.acc < 2", 20, ("keyword OR",)),
    ("AND metrics.acc > 1", 0, ("keyword AND",)),
    ("params.a = 'abc", 11, ("unterminated string",)),
    ('params.a = "abc', 11, ("unterminated string",)),
    ("params.a = 'abc\\'", 11, ("unterminated string",)),
    ("params.`abc = 'x'", 7, ("unterminated quoted key",)),
    ("params.lr = 0.01", 12, ("param values are strings: write params.lr = '0.01'",)),
    ("tags.n > 'x'", 7, ("not allowed on tags", "LIKE", "IN")),
    ("tags.n = 3", 9, ("tag values are strings: write tags.n = '3'",)),
    ("params.x IN ('a', 1)", 18, ("strings", "quote")),
    ("metrics.acc = 'high'", 14, ("metric values are numbers",)),
    ("metrics.acc = '0.9'", 14, ("metric values are numbers: write metrics.acc = 0.9",)),
    ("metrics.acc LIKE '%a'", 12, ("not allowed on metrics", "=, !=, <")),
    ("metrics.acc IN (1, 2)", 12, ("not allowed on metrics",)),
    ("params.a > 'x'", 9, ("not allowed on params", "=, !=, LIKE, ILIKE, IN, NOT IN")),
    ("attributes.foo = 'x'", 0, ("unknown attribute", "run_id", "run_name", "status")),
    ("attributes. = 'x'", 0, ("missing key",)),
    ("metrics. > 1", 0, ("missing key",)),
    ("metrics.`` > 1", 0, ("missing key",)),
    ("acc > 1", 0, ("unknown attribute 'acc'", "metrics.acc")),
    ("metrics > 1", 0, ("needs a key",)),
    ("attributes.start_time = 'x'", 24, ("number",)),
    ("start_time = '100'", 13, ("write attributes.start_time = 100",)),
    ("start_time LIKE '1%'", 11, ("not allowed on start_time", "<=")),
    ("start_time > NaN", 13, ("only allowed for metrics",)),
    ("end_time < -inf", 11, ("only allowed for metrics",)),
    ("status > 'x'", 7, ("not allowed on status", "LIKE")),
    ("status = 5", 9, ("string attribute: write attributes.status = '5'",)),
    ("status = FINISHED", 9, ("quoted string", "'FINISHED'")),
    ("params.model IN 'rf'", 16, ("parenthesised list",)),
    ("params.model IN ()", 17, ("empty list",)),
    ("params.model IN ('a'", 20, ("missing ')'",)),
    ("params.model IN ('a' 'b')", 21, ("expected ',' or ')'",)),
    ("params.model IN ('a',)", 21, ("expected a quoted string",)),
    ("params.model = ('a')", 15, ("only allowed after IN",)),
    ("params.a NOT LIKE 'x'", 13, ("expected IN after NOT",)),
    ("params.a IS 'x'", 12, ("expected NULL",)),
    ("params.a IS NOT", 15, ("expected NULL",)),
    ("metrics.acc > 1.2.3", 14, ("malformed number",)),
    ("metrics.acc > 1e", 14, ("malformed number",)),
    ("metrics.acc > -x", 14, ("number after the sign",)),
    ("metrics.acc ! 1", 12, ("'!='",)),
    ("metrics.acc > 1 ; DROP TABLE runs", 16, ("unexpected character ';'",)),
    ("`weird` = 1", 0, ("needs a prefix",)),
    ("metrics.acc > 1 AND (", 21, ("expected a comparison",)),
    ("métrics.acc > 1", 0, ("unknown prefix 'métrics'", "use metrics.")),
    ("metrics.a€b > 1", 9, ("in a key", "backquotes: metrics.`a€b`")),
    ("metrics.a:b > 1", 9, ("in a key", "backquotes: metrics.`a:b`")),
    ("metrics.val loss > 0", 12, ("expected an operator", "backquotes: metrics.`val loss`")),
    ("`foo`.acc > 1", 0, ("unknown prefix 'foo'",)),
    ("params.a = 'x' -- comment", 15, ("unexpected character '-'",)),
    ("params.a = 'x' /* c */", 15, ("unexpected character '/'",)),
]


@pytest.mark.parametrize(("text", "position", "fragments"), ERROR_CASES)
def test_filter_errors(text: str, position: int, fragments: tuple[str, ...]) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.text == text
    assert err.position == position, str(err)
    for fragment in fragments:
        assert fragment in str(err)
    # the message carries a caret under the offending token
    assert "\n  " + " " * position + "^" in str(err)


def test_deep_nesting_is_a_syntax_error() -> None:
    text = "(" * 5000 + "metrics.a > 1" + ")" * 5000
    with pytest.raises(FilterSyntaxError, match="nested"):
        parse_filter(text)
    ok = "(" * 50 + "metrics.a > 1" + ")" * 50
    assert parse_filter(ok) == Comparison("metric", "a", ">", 1.0)


@pytest.mark.parametrize("bad", [None, 3, b"metrics.a > 1", ["metrics.a > 1"]])
def test_non_string_filter(bad: object) -> None:
    with pytest.raises(FilterSyntaxError, match="must be a str"):
        parse_filter(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clauses", "bad_clause", "position", "fragment"),
    [
        (["metrics.acc DESC", "foo.x"], "foo.x", 0, "unknown prefix"),
        ("metrics.acc DOWN", "metrics.acc DOWN", 12, "ASC, DESC"),
        ("metrics.acc DESC extra", "metrics.acc DESC extra", 17, "ASC, DESC"),
        ("metrics.acc,", "metrics.acc,", 12, "key to order by"),
        ("nope", "nope", 0, "unknown attribute 'nope'"),
        ("attributes.nope DESC", "attributes.nope DESC", 0, "run_name"),
        ("metrics.`x DESC", "metrics.`x DESC", 8, "unterminated"),
        ("DESC", "DESC", 0, "keyword DESC"),
    ],
)
def test_order_by_errors(
    clauses: list[str] | str, bad_clause: str, position: int, fragment: str
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(clauses)
    assert info.value.text == bad_clause
    assert info.value.position == position
    assert fragment in str(info.value)


def test_order_by_non_string() -> None:
    with pytest.raises(FilterSyntaxError):
        parse_order_by([3])  # type: ignore[list-item]
    with pytest.raises(FilterSyntaxError):
        parse_order_by(3)  # type: ignore[arg-type]


def test_invalid_hand_built_ast() -> None:
    with pytest.raises(FilterSyntaxError):
        compile_search(Comparison("attribute", "lifecycle_stage", "=", "x"))
    with pytest.raises(FilterSyntaxError):
        compile_search(Comparison("param", "x", "; DROP TABLE runs", "x"))
    with pytest.raises(FilterSyntaxError):
        compile_search(Comparison("metric", "x", ">", "1"))
    with pytest.raises(FilterSyntaxError):
        compile_search(Comparison("banana", "x", "=", "1"))  # type: ignore[arg-type]
    with pytest.raises(FilterSyntaxError):
        compile_search(None, [OrderKey("attribute", "user; DROP TABLE runs", True)])


# --------------------------------------------------------------------------- hostile input


HOSTILE_STRINGS = [
    HOSTILE,
    "'; DROP TABLE runs; --",
    "x'); DROP TABLE runs; --",
    '" OR ""="',
    "/* comment */",
    "-- comment",
    "DROP TABLE runs",
    "1; DELETE FROM params",
    "\\",
    "%' OR '1'='1",
]


@pytest.mark.parametrize("payload", HOSTILE_STRINGS)
@pytest.mark.parametrize("kind", ["params", "tags", "run_name", "status"])
def test_hostile_values(db: sqlite3.Connection, payload: str, kind: str) -> None:
    if kind in ("params", "tags"):
        left = f"{kind}.model"
        node = Comparison("param" if kind == "params" else "tag", "model", "=", payload)
    else:
        left = f"attributes.{kind}"
        node = Comparison("attribute", kind, "=", payload)
    text = format_filter(node)
    assert text.startswith(left)
    assert parse_filter(text) == node
    for op in ("=", "LIKE", "ILIKE"):
        filter_string = text.replace(" = ", f" {op} ", 1)
        assert run_query(db, filter_string) == []
    assert run_query(db, f"{left} IN ({text.split(' = ', 1)[1]}, 'zzz')") == []
    assert_intact(db)


def test_hostile_value_matches_only_its_run(db: sqlite3.Connection) -> None:
    assert run_query(db, "tags.note = '\\' OR 1=1 --'") == ["r5"]
    assert run_query(db, 'tags.note = "\' OR 1=1 --"') == ["r5"]
    assert run_query(db, "tags.note = ''' OR 1=1 --'") == ["r5"]
    assert run_query(db, "tags.note LIKE '%OR 1=1%'") == ["r5"]
    assert_intact(db)


@pytest.mark.parametrize("payload", HOSTILE_STRINGS)
@pytest.mark.parametrize("prefix", ["metrics", "params", "tags"])
def test_hostile_keys(db: sqlite3.Connection, payload: str, prefix: str) -> None:
    escaped = payload.replace("\\", "\\\\").replace("`", "\\`")
    value = "0" if prefix == "metrics" else "'x'"
    node = parse_filter(f"{prefix}.`{escaped}` != {value}")
    assert isinstance(node, Comparison)
    assert node.key == payload
    sql, args = compiled(node)
    assert payload not in sql
    assert payload in args
    assert run_query(db, f"{prefix}.`{escaped}` != {value}") == []
    assert run_query(db, f"{prefix}.`{escaped}` IS NOT NULL") == []
    assert set(run_query(db, f"{prefix}.`{escaped}` IS NULL")) == ALL
    assert run_query(db, "", [f"{prefix}.`{escaped}` DESC"]) == ["r5", "r4", "r3", "r2", "r1"]
    assert_intact(db)


@pytest.mark.parametrize(
    "text",
    [
        "params.model = 'rf' OR 1=1 --",
        "params.model = 'rf' OR 1=1",
        "params.model = 'rf'; DROP TABLE runs",
        "params.model = 'rf' -- '",
        "params.model = 'rf' /* */",
        "params.model = rf' OR '1'='1",
        "params.model = 'rf'' OR ''1''=''1'",
        "1=1",
        "metrics.acc > 0 OR 1 = 1",
        "DROP TABLE runs",
        "metrics.acc > 0); DROP TABLE runs; --",
        "params.`x` = 'a' UNION SELECT name FROM sqlite_master",
    ],
)
def test_hostile_filters(db: sqlite3.Connection, text: str) -> None:
    try:
        node = parse_filter(text)
    except FilterSyntaxError:
        pass
    else:
        # parsed as data: the only one here is the doubled-quote string
        assert node == Comparison("param", "model", "=", "rf' OR '1'='1")
        assert run_query(db, text) == []
    assert_intact(db)


# --------------------------------------------------------------------------- properties


PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_parse_outcome(text: str) -> FilterNode | None:
    try:
        return parse_filter(text)
    except FilterSyntaxError as exc:
        assert exc.__cause__ is None, "an internal error was wrapped"
        assert 0 <= exc.position <= len(text)
        return None


@PROPERTY_SETTINGS
@given(st.text())
def test_arbitrary_text_never_escapes(text: str) -> None:
    _check_parse_outcome(text)


FRAGMENTS = [
    "metrics.acc", "params.model", "tags.team", "status", "start_time", "metrics.`a b`",
    "params.\"k\"", "=", "==", "!=", "<>", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT",
    "IS", "NULL", "AND", "OR", "(", ")", ",", "'rf'", "'%x_'", '"q"', "''", "1", "-2.5",
    "1e9", "NaN", "inf", "-inf", "`", "'", '"', "\\", ".", "-", "foo.bar", "ASC", "DESC", ";",
]  # fmt: skip


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from([" ", ""]))
def test_token_soup(db: sqlite3.Connection, fragments: list[str], sep: str) -> None:
    text = sep.join(fragments)
    node = _check_parse_outcome(text)
    if node is not None:
        db.execute(*compiled(node)).fetchall()
        assert parse_filter(format_filter(node)) is not None
    try:
        keys = parse_order_by(text)
    except FilterSyntaxError as exc:
        assert exc.__cause__ is None, "an internal error was wrapped"
    else:
        db.execute(*compiled(None, keys)).fetchall()


# the reserved tags' names select a column or a second name (see _compile_mlflow_tag): drawn on
# purpose, as fixed vocabulary like the attributes'
_RESERVED_TAGS = sorted({*MLFLOW_TAGS, *MLFLOW_TAGS.values(), *COLUMN_TAGS})
_keys = st.text(min_size=1, max_size=12) | st.sampled_from(_RESERVED_TAGS)
_strings = st.text(max_size=12)
_metric_values = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [NAN, INF, -INF]
)
_time_values = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
_null_ops = st.sampled_from(["IS NULL", "IS NOT NULL"])
_numeric_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
_string_ops = st.sampled_from(["=", "!=", "LIKE", "ILIKE"])
_list_ops = st.sampled_from(["IN", "NOT IN"])
_string_lists = st.lists(_strings, min_size=1, max_size=3).map(tuple)
_keyed_kinds = st.sampled_from(["param", "tag"])
_string_attributes = st.sampled_from(["run_id", "run_name", "status", "artifact_uri", "user_id"])
_time_attributes = st.sampled_from(["start_time", "end_time"])

_comparisons = st.one_of(
    st.builds(Comparison, st.just("metric"), _keys, _numeric_ops, _metric_values),
    st.builds(Comparison, st.sampled_from(["metric", "param", "tag"]), _keys, _null_ops, st.none()),
    st.builds(Comparison, _keyed_kinds, _keys, _string_ops, _strings),
    st.builds(Comparison, _keyed_kinds, _keys, _list_ops, _string_lists),
    st.builds(Comparison, st.just("attribute"), _string_attributes, _string_ops, _strings),
    st.builds(Comparison, st.just("attribute"), _string_attributes, _list_ops, _string_lists),
    st.builds(Comparison, st.just("attribute"), _time_attributes, _numeric_ops, _time_values),
    st.builds(
        Comparison,
        st.just("attribute"),
        _string_attributes | _time_attributes,
        _null_ops,
        st.none(),
    ),
)
def _trees_of(
    leaves: st.SearchStrategy[Comparison], max_leaves: int
) -> st.SearchStrategy[FilterNode]:
    """ANDs and ORs of two or three sub-trees, down to ``leaves``."""
    return st.recursive(
        leaves,
        lambda children: st.builds(
            BoolOp,
            st.sampled_from(["AND", "OR"]),
            st.lists(children, min_size=2, max_size=3).map(tuple),
        ),
        max_leaves=max_leaves,
    )


_trees = _trees_of(_comparisons, max_leaves=8)


def _normalised(node: FilterNode) -> object:
    """A structure equal for equal trees, NaN included, and sensitive to int vs float."""
    if isinstance(node, BoolOp):
        return ("bool", node.op, tuple(_normalised(item) for item in node.items))
    value = node.value
    if isinstance(value, float) and math.isnan(value):
        shown: object = ("NaN",)
    else:
        shown = value
    return ("cmp", node.kind, node.key, node.op, type(value).__name__, shown)


def _vocabulary(node: Comparison) -> bool:
    """Whether the node's key is a fixed name that chooses the SQL, not text of the user's."""
    return node.kind == "attribute" or (node.kind == "tag" and node.key in _RESERVED_TAGS)


def _skeleton(node: FilterNode) -> FilterNode:
    """The same tree with every user key and string value replaced by a fixed placeholder."""
    if isinstance(node, BoolOp):
        return BoolOp(node.op, tuple(_skeleton(item) for item in node.items))
    key = node.key if _vocabulary(node) else "K"
    value = node.value
    if isinstance(value, str):
        value = "V"
    elif isinstance(value, tuple):
        value = tuple("V" for _ in value)
    return Comparison(node.kind, key, node.op, value)


def _user_text(node: FilterNode) -> list[str]:
    if isinstance(node, BoolOp):
        return [text for item in node.items for text in _user_text(item)]
    value = node.value
    constant = isinstance(value, float) and math.isnan(value) and node.op not in ("=", "!=")
    # attribute and reserved tag names are fixed vocabulary; "< NaN" and friends compile to a
    # constant false
    texts = [] if _vocabulary(node) or constant else [node.key]
    if isinstance(node.value, str):
        texts.append(node.value)
    elif isinstance(node.value, tuple):
        texts.extend(node.value)
    return texts


@PROPERTY_SETTINGS
@given(_trees)
def test_format_round_trip(tree: FilterNode) -> None:
    text = format_filter(tree)
    parsed = parse_filter(text)
    assert parsed is not None
    assert _normalised(parsed) == _normalised(tree)


@PROPERTY_SETTINGS
@given(_trees)
def test_compiled_sql_holds_no_user_text(db: sqlite3.Connection, tree: FilterNode) -> None:
    sql, args = compiled(tree)
    skeleton_sql, _ = compiled(_skeleton(tree))
    # the SQL text depends only on the shape of the tree, never on keys or values ...
    assert sql == skeleton_sql
    for text in _user_text(tree):
        if text not in skeleton_sql:
            assert text not in sql
        # ... which all travel as bound parameters
        assert text in args or like_to_glob(text) in args
    assert sql.count("?") == len(args)
    db.execute(sql, args).fetchall()
    assert_intact(db)


# ------------------------------------------------- semantics against a Python reference

_RUN_FIELDS = {"run_id": 0, "run_name": 1, "status": 2, "start_time": 3, "end_time": 4,
               "user_id": 5, "artifact_uri": 6}  # fmt: skip
_KEYED_DATA: dict[str, dict[str, dict[str, object]]] = {
    "metric": METRICS,  # type: ignore[dict-item]
    "param": PARAMS,  # type: ignore[dict-item]
    "tag": TAGS,  # type: ignore[dict-item]
}


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def _like(text: str, pattern: str) -> bool:
    import re

    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(body, text, re.DOTALL) is not None


def _holds(node: FilterNode, run: str) -> bool:
    """MLflow's semantics, as the module docstring of nbtrack.query.sql states them."""
    if isinstance(node, BoolOp):
        results = [_holds(item, run) for item in node.items]
        return all(results) if node.op == "AND" else any(results)
    if node.kind == "attribute":
        row = next(r for r in RUNS if r[0] == run)
        present, value = True, row[_RUN_FIELDS[node.key]]
        if value is None:
            present = False
    else:
        values = _KEYED_DATA[node.kind].get(node.key, {})
        present, value = run in values, values.get(run)
    if node.op in ("IS NULL", "IS NOT NULL"):
        return present == (node.op == "IS NOT NULL")
    if not present:
        return False
    if node.kind == "metric" or node.key in ("start_time", "end_time"):
        target = float(node.value)  # type: ignore[arg-type]
        number = math.nan if value is None else float(value)  # type: ignore[arg-type]
        if math.isnan(target):
            return {"=": math.isnan(number), "!=": not math.isnan(number)}.get(node.op, False)
        if math.isnan(number):  # as in Python (and MLflow): NaN differs from every number
            return node.op == "!="
        import operator

        compare = {"=": operator.eq, "!=": operator.ne, "<": operator.lt,
                   "<=": operator.le, ">": operator.gt, ">=": operator.ge}  # fmt: skip
        return bool(compare[node.op](number, target))
    text = str(value)
    if node.op in ("IN", "NOT IN"):
        return (text in node.value) == (node.op == "IN")  # type: ignore[operator]
    target_text = str(node.value)
    if node.op == "LIKE":
        return _like(text, target_text)
    if node.op == "ILIKE":
        return _like(_ascii_lower(text), _ascii_lower(target_text))
    return (text == target_text) == (node.op == "=")


_fixture_texts = st.sampled_from(
    sorted({v for table in (PARAMS, TAGS) for vs in table.values() for v in vs.values()}
           | {r[i] for r in RUNS for i in (0, 1, 2, 5, 6) if r[i] is not None}
           | {"%", "_", "r%", "%a%", "A%", "ml%", "x"})
)
_fixture_comparisons = st.one_of(
    st.builds(Comparison, st.just("metric"), st.sampled_from(["acc", "loss", "absent"]),
              _numeric_ops, st.sampled_from([0.1, 0.5, 0.9, NAN, NAN, INF, -INF])),
    st.builds(Comparison, st.sampled_from(["metric", "param", "tag"]),
              st.sampled_from([*METRICS, *PARAMS, *TAGS, "absent"]), _null_ops, st.none()),
    st.builds(Comparison, _keyed_kinds, st.sampled_from([*PARAMS, *TAGS, "absent"]), _string_ops,
              _fixture_texts),
    st.builds(Comparison, _keyed_kinds, st.sampled_from([*PARAMS, *TAGS]), _list_ops,
              st.lists(_fixture_texts, max_size=3).map(tuple)),
    st.builds(Comparison, st.just("attribute"), _string_attributes, _string_ops, _fixture_texts),
    st.builds(Comparison, st.just("attribute"), _time_attributes, _numeric_ops,
              st.sampled_from([0, 1000, 2500, 3000, 6000, 2500.5])),
    st.builds(Comparison, st.just("attribute"), _string_attributes | _time_attributes,
              _null_ops, st.none()),
)  # fmt: skip
_fixture_trees = _trees_of(_fixture_comparisons, max_leaves=6)


def compiled_for_store(
    conn: sqlite3.Connection, node: FilterNode | None, order_keys: Sequence[OrderKey] = ()
) -> tuple[str, list[object]]:
    """The query the store runs for a filter (see nbtrack.store.plan), and its args."""
    q = compile_search(node, order_keys)
    source, source_args, start, start_args = search_source(
        lambda sql, args: conn.execute(sql, args).fetchall(), [1], ["active"], q, 10**9
    )
    sql = (
        f"SELECT r.run_id {source} WHERE {start} AND r.experiment_id IN (?)"
        f" AND r.lifecycle_stage IN (?) AND ({q.where}) ORDER BY {q.order}"
    )
    return sql, [*source_args, *start_args, 1, "active", *q.where_args, *q.order_args]


@settings(PROPERTY_SETTINGS, max_examples=500)
@given(_fixture_trees, st.sampled_from(["joins", "exists", "from a param", "store default"]))
def test_filter_agrees_with_reference(db: sqlite3.Connection, tree: FilterNode, form: str) -> None:
    """Every form of a keyed comparison (a LEFT JOIN, EXISTS once the joins are spent, or the
    table a search starts from when it goes through the param index) selects exactly the runs
    the stated semantics select."""
    from unittest import mock

    if form == "from a param":  # any param probe of the filter looks worth starting from
        with mock.patch("nbtrack.store.plan._runs_in_scope", return_value=10**9):
            sql, args = compiled_for_store(db, tree)
    elif form == "store default":  # a few runs: params looked up by run
        sql, args = compiled_for_store(db, tree)
    else:
        with mock.patch("nbtrack.query.sql.MAX_JOINS", 0 if form == "exists" else MAX_JOINS):
            sql, args = compiled(tree)
    assert set(r[0] for r in db.execute(sql, args)) == {r for r in ALL if _holds(tree, r)}


def test_filter_beyond_the_join_budget(db: sqlite3.Connection) -> None:
    """A filter with more keyed comparisons than SQLite can join still runs, and sorts."""
    many = " OR ".join(f"params.lr = '{i}'" for i in range(MAX_JOINS + 20))
    text = f"({many} OR params.lr = '0.01') AND metrics.loss >= 0.1"
    assert run_query(db, text, ["metrics.loss DESC"]) == ["r3", "r1"]
    assert run_query(db, text, ["metrics.loss ASC", "params.model"]) == ["r1", "r3"]


def test_a_filter_too_large_for_sqlite_is_a_filter_error(store_dir: Path) -> None:
    """SQLite caps expression depth at 1000: a longer chain of ORs gets a FilterSyntaxError
    that says to use IN, which has no such cap."""
    import nbtrack

    with nbtrack.start_run(run_name="r7"):
        pass
    ored = " OR ".join(f"attributes.run_name = 'r{i}'" for i in range(1200))
    with pytest.raises(FilterSyntaxError, match=r"too large for SQLite.*IN \("):
        nbtrack.search_runs(filter_string=ored)
    listed = "attributes.run_name IN (" + ", ".join(f"'r{i}'" for i in range(5000)) + ")"
    assert list(nbtrack.search_runs(filter_string=listed)["run_name"]) == ["r7"]

