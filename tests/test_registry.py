"""The model registry: versions, stages, aliases, search, and the audit trail of every change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import nbtrack
from nbtrack.exceptions import (
    AlreadyExistsError,
    FilterSyntaxError,
    ForceRequiredError,
    InvalidInputError,
    InvalidModelURIError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegisteredModelNotFoundError,
)


@pytest.fixture
def iris() -> tuple:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _log(iris: tuple, name: str | None = "churn", c: float = 1.0) -> nbtrack.models.save.ModelInfo:
    X, y = iris
    with nbtrack.start_run():
        nbtrack.log_metric("accuracy", c / 10)
        return nbtrack.log_model(
            LogisticRegression(C=c, max_iter=500).fit(X, y), "model",
            registered_model_name=name, input_example=X[:3],
        )


def _dump(db: Path) -> list:
    conn = sqlite3.connect(db)
    try:
        return [
            (t, conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall())
            for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%model%'"
                " OR name = 'registry_events'"
            )
        ]
    finally:
        conn.close()


def test_versions_are_numbered_and_never_reused(store_dir: Path, iris: tuple) -> None:
    assert _log(iris).registered_model_version == 1
    assert _log(iris).registered_model_version == 2
    client = nbtrack.Client()
    client.delete_model_version("churn", 2)
    assert _log(iris).registered_model_version == 3
    assert [v.version for v in client.search_model_versions("name = 'churn'")] == ["3", "1"]


def test_the_registry_uri_is_the_tracking_store(store_dir: Path, iris: tuple) -> None:
    """MLflow code setting both URIs to one store runs as is; another URI is not used, and a
    warning says so. Versions have MLflow's status_message and model_id (None here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbtrack.set_registry_uri(nbtrack.get_tracking_uri())
        nbtrack.set_registry_uri(str(store_dir))
    assert nbtrack.get_registry_uri() == nbtrack.get_tracking_uri()
    with pytest.warns(nbtrack.exceptions.NbtrackWarning, match="registry in the tracking store"):
        nbtrack.set_registry_uri("databricks-uc")
    assert nbtrack.get_registry_uri() == nbtrack.get_tracking_uri()
    version = nbtrack.Client().get_model_version("churn", _log(iris).registered_model_version)
    assert (version.status, version.status_message, version.model_id) == ("READY", None, None)


def test_register_model_from_a_run_uri_and_from_another_registered_version(
    store_dir: Path, iris: tuple
) -> None:
    info = _log(iris, name=None)
    client = nbtrack.Client()
    v = nbtrack.register_model(info.model_uri, "churn")
    assert (v.version, v.run_id, v.current_stage) == ("1", info.run_id, "None")
    assert v.source == info.model_uri
    # A run-id prefix is resolved to the full id in the stored source.
    short = f"runs:/{info.run_id[:8]}/model"
    assert client.register_model(short, "churn").source == info.model_uri
    copy = client.register_model("models:/churn/1", "churn-copy")
    assert (copy.source, copy.run_id) == (info.model_uri, info.run_id)


def test_register_refuses_uris_that_name_no_model(store_dir: Path, iris: tuple) -> None:
    info = _log(iris, name=None)
    client = nbtrack.Client()
    with pytest.raises(ModelNotFoundError, match="no saved model"):
        client.register_model(f"runs:/{info.run_id}/nothing-here", "churn")
    with pytest.raises(InvalidModelURIError, match="Accepted forms"):
        client.register_model("s3://bucket/model", "churn")
    with pytest.raises(InvalidInputError, match="not allowed"):
        client.register_model(info.model_uri, "bad/name")
    assert client.search_registered_models() == []


def test_stage_transitions_archive_existing_and_audit(store_dir: Path, iris: tuple) -> None:
    _log(iris)
    _log(iris)
    client = nbtrack.Client()
    client.transition_model_version_stage("churn", 1, "production", comment="first release")
    assert client.get_model_version("churn", 1).current_stage == "Production"
    v2 = client.transition_model_version_stage(
        "churn", "2", "Production", archive_existing_versions=True, comment="better f1"
    )
    assert v2.current_stage == "Production"
    assert client.get_model_version("churn", 1).current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("churn", ["Production"])] == ["2"]
    stage_events = [
        (e.version, e.from_value, e.to_value, e.comment)
        for e in client.get_model_history("churn")
        if e.kind == "stage"
    ]
    assert stage_events == [
        ("1", "None", "Production", "first release"),
        ("2", "None", "Production", "better f1"),
        ("1", "Production", "Archived", "better f1"),
    ]
    assert all(e.user_id and e.timestamp > 0 for e in client.get_model_history("churn"))
    assert [e.kind for e in client.get_model_history("churn", 1)] == [
        "create_version", "stage", "stage"
    ]
    # A move to the stage a version is in already records nothing.
    before = len(client.get_model_history("churn"))
    client.transition_model_version_stage("churn", 2, "Production", True)
    client.transition_model_version_stage("churn", 1, "archived")
    assert len(client.get_model_history("churn")) == before


def test_bad_stage_and_version_change_nothing(store_dir: Path, iris: tuple) -> None:
    _log(iris)
    client = nbtrack.Client()
    before = _dump(store_dir / "nbtrack.db")
    with pytest.raises(InvalidInputError, match="None, Staging, Production, Archived"):
        client.transition_model_version_stage("churn", 1, "Prod")
    with pytest.raises(InvalidInputError, match="only when moving to Staging or Production"):
        client.transition_model_version_stage("churn", 1, "Archived", True)
    with pytest.raises(ModelVersionNotFoundError, match="has no version 7; it has 1"):
        client.transition_model_version_stage("churn", 7, "Staging")
    with pytest.raises(InvalidInputError, match="positive whole number"):
        client.get_model_version("churn", "latest")
    with pytest.raises(RegisteredModelNotFoundError, match="no registered model named 'nope'"):
        client.get_model_version("nope", 1)
    assert _dump(store_dir / "nbtrack.db") == before


def test_aliases_move_resolve_and_are_validated(store_dir: Path, iris: tuple) -> None:
    _log(iris)
    _log(iris)
    client = nbtrack.Client()
    client.set_registered_model_alias("churn", "champion", 1)
    client.set_registered_model_alias("churn", "champion", 2, comment="retrained")
    assert client.get_model_version_by_alias("churn", "champion").version == "2"
    assert client.get_registered_model("churn").aliases == {"champion": "2"}
    assert client.get_model_version("churn", 2).aliases == ["champion"]
    for bad, why in [("latest", "reserved"), ("v3", "reserved"), ("a b", "not allowed"),
                     ("", "non-empty")]:
        with pytest.raises(InvalidInputError, match=why):
            client.set_registered_model_alias("churn", bad, 1)
    with pytest.raises(ModelVersionNotFoundError, match="its aliases: champion"):
        client.get_model_version_by_alias("churn", "challenger")
    client.delete_registered_model_alias("churn", "champion", comment="rollback")
    with pytest.raises(ModelVersionNotFoundError):
        client.delete_registered_model_alias("churn", "champion")
    alias_events = [(e.kind, e.from_value, e.to_value, e.comment)
                    for e in client.get_model_history("churn") if e.kind.startswith("alias")]
    assert alias_events == [
        ("alias:champion", None, "1", None),
        ("alias:champion", "1", "2", "retrained"),
        ("alias:champion", "2", None, "rollback"),
    ]


def test_deleting_what_may_be_serving_asks_for_force(store_dir: Path, iris: tuple) -> None:
    _log(iris)
    client = nbtrack.Client()
    client.transition_model_version_stage("churn", 1, "Production")
    before = _dump(store_dir / "nbtrack.db")
    with pytest.raises(ForceRequiredError, match="in Production") as refused:
        client.delete_model_version("churn", 1)
    assert refused.value.error_code == "INVALID_STATE"  # one of the codes the README lists
    with pytest.raises(ForceRequiredError, match="has 1 version"):
        client.delete_registered_model("churn")
    assert _dump(store_dir / "nbtrack.db") == before
    client.delete_registered_model("churn", force=True)
    with pytest.raises(RegisteredModelNotFoundError):
        client.get_registered_model("churn")
    # The audit trail outlives the model.
    assert client.get_model_history("churn")[-1].kind == "delete_model"
    # An empty registered model needs no force.
    client.create_registered_model("empty")
    client.delete_registered_model("empty")


def test_models_uris_resolve_by_version_stage_alias_and_latest(
    store_dir: Path, iris: tuple
) -> None:
    first = _log(iris, c=1.0)
    second = _log(iris, c=0.01)
    client = nbtrack.Client()
    client.transition_model_version_stage("churn", 1, "Staging")
    client.set_registered_model_alias("churn", "champion", 2)
    expect = {
        "models:/churn/1": 1.0,
        "models:/churn/staging": 1.0,
        "models:/churn@champion": 0.01,
        "models:/churn/latest": 0.01,
        first.model_uri: 1.0,
        second.model_uri: 0.01,
        client.get_model_version_download_uri("churn", 1): 1.0,
    }
    for uri, c in expect.items():
        assert c == nbtrack.load_model(uri).C, uri
    with pytest.raises(ModelVersionNotFoundError, match="no version in stage 'Production'"):
        nbtrack.load_model("models:/churn/Production")
    for bad in ["models:/churn", "models:/churn/Prod", "runs:/abc", "ftp://x/y", ""]:
        with pytest.raises(InvalidModelURIError, match="Accepted forms"):
            nbtrack.load_model(bad)


def test_create_rename_describe_tag_and_search(store_dir: Path, iris: tuple) -> None:
    client = nbtrack.Client()
    client.create_registered_model("churn", tags={"team": "ml"}, description="churn model")
    with pytest.raises(AlreadyExistsError, match="exists already"):
        client.create_registered_model("churn")
    info = _log(iris, name=None)
    client.create_model_version("churn", info.model_uri, run_id=info.run_id,
                                tags={"data": "v2"}, description="first")
    client.create_registered_model("fraud", tags={"team": "risk"})
    found = client.search_registered_models("tags.team = 'ml'")
    assert [m.name for m in found] == ["churn"]
    assert [m.name for m in client.search_registered_models("name LIKE '%r%'")] == [
        "churn", "fraud"
    ]
    assert [m.name for m in client.search_registered_models(order_by=["name DESC"])] == [
        "fraud", "churn"
    ]
    assert [v.version for v in client.search_model_versions(
        f"name = 'churn' AND run_id IN ('{info.run_id}') AND tags.data = 'v2'")] == ["1"]
    with pytest.raises(FilterSyntaxError, match="unknown key 'stagee'"):
        client.search_model_versions("stagee = 'x'")
    # MLflow's comparisons of version numbers, and NOT IN
    assert [v.version for v in client.search_model_versions("version_number >= 1")] == ["1"]
    assert client.search_model_versions("version_number > 1") == []
    assert [m.name for m in client.search_registered_models("name NOT IN ('churn')")] == [
        "fraud"
    ]
    with pytest.raises(FilterSyntaxError, match="allowed: =, !=, LIKE, ILIKE, IN, NOT IN\n"):
        client.search_registered_models("name > 'a'")
    with pytest.raises(FilterSyntaxError, match="whole number"):
        client.search_model_versions("version_number > 'one'")
    with pytest.raises(InvalidInputError, match="order_by"):
        client.search_registered_models(order_by=["size DESC"])
    client.update_model_version("churn", 1, description="retrained on v2")
    client.set_model_version_tag("churn", 1, "validated", "yes")
    client.delete_model_version_tag("churn", 1, "data")
    v = client.get_model_version("churn", 1)
    assert (v.description, v.tags) == ("retrained on v2", {"validated": "yes"})
    client.update_registered_model("churn", "predicts churn")
    client.set_registered_model_tag("churn", "owner", "ana")
    client.rename_registered_model("churn", "churn-v2")
    renamed = client.get_registered_model("churn-v2")
    assert (renamed.description, renamed.tags) == ("predicts churn", {"team": "ml", "owner": "ana"})
    assert client.get_model_version("churn-v2", 1).description == "retrained on v2"
    with pytest.raises(AlreadyExistsError):
        client.rename_registered_model("churn-v2", "fraud")
    assert nbtrack.load_model("models:/churn-v2/1").C == 1.0


def test_a_v2_store_is_migrated_to_hold_the_registry(tmp_path: Path) -> None:
    from nbtrack.store.schema import CURRENT_VERSION, MIGRATIONS
    from nbtrack.store.sqlite import SQLiteStore

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migrate in MIGRATIONS[:2]:
        migrate(conn)
    conn.execute("INSERT INTO schema_version VALUES (2)")
    conn.commit()
    conn.close()
    store = SQLiteStore(db, tmp_path / "artifacts")
    assert store.schema_version == CURRENT_VERSION >= 4
    assert store.query("SELECT count(*) FROM model_versions") == [(0,)]
    tables = {t for (t,) in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "logged_models" not in tables  # v3 had it; v4 reads the artifact index instead


def test_deleting_a_model_records_each_version_and_alias_it_removes(
    store_dir: Path, iris: tuple
) -> None:
    _log(iris)
    client = nbtrack.Client()
    client.set_registered_model_alias("churn", "champion", 1)
    client.delete_registered_model("churn", force=True)
    trail = [(e.kind, e.from_value, e.to_value) for e in client.get_model_history("churn", 1)]
    assert trail[-2:] == [("alias:champion", "1", None), ("delete_version", "1", None)]
    # the name's history is its own: no rename onto it, and numbers go on from it
    client.create_registered_model("other")
    with pytest.raises(AlreadyExistsError, match="name of a deleted registered model"):
        client.rename_registered_model("other", "churn")
    assert client.rename_registered_model("other", "other").name == "other"  # a no-op
    assert _log(iris).registered_model_version == 2


def test_registry_searches_page_as_mlflow_s_and_have_fluent_forms(
    store_dir: Path, iris: tuple
) -> None:
    for _ in range(3):
        _log(iris)
    client = nbtrack.Client()
    client.create_registered_model("another")
    first = client.search_model_versions("name = 'churn'", max_results=2, page_token=None)
    assert [v.version for v in first] == ["3", "2"] and first.token is not None
    rest = client.search_model_versions("name = 'churn'", max_results=2, page_token=first.token)
    assert [v.version for v in rest] == ["1"] and rest.token is None
    models = client.search_registered_models(max_results=1)
    assert [m.name for m in models] == ["another"] and models.token is not None
    assert [m.name for m in client.search_registered_models(page_token=models.token)] == [
        "churn"
    ]
    with pytest.raises(InvalidInputError, match="page_token"):
        client.search_registered_models(page_token="nonsense")
    assert [m.name for m in nbtrack.search_registered_models()] == ["another", "churn"]
    assert len(nbtrack.search_model_versions(filter_string="name = 'churn'")) == 3
    assert len(nbtrack.search_model_versions(max_results=1)) == 1


def test_missing_stages_and_aliases_say_which_there_are(store_dir: Path, iris: tuple) -> None:
    _log(iris)
    client = nbtrack.Client()
    client.transition_model_version_stage("churn", 1, "Staging")
    client.set_registered_model_alias("churn", "champion", 1)
    with pytest.raises(ModelVersionNotFoundError, match=r"stages with a version: Staging\)"):
        nbtrack.load_model("models:/churn/Production")
    with pytest.raises(ModelVersionNotFoundError, match=r"its aliases: champion\)"):
        client.delete_registered_model_alias("churn", "nope")


def test_mlflow_call_shapes_that_ported_code_uses(store_dir: Path, iris: tuple) -> None:
    info = _log(iris)
    client = nbtrack.Client()
    client.update_registered_model("churn", "kept")
    assert client.update_registered_model("churn").description == "kept"  # None: unchanged
    assert [m.name for m in client.search_registered_models(order_by="name DESC")] == ["churn"]
    assert [v.version for v in client.get_latest_versions("churn", stages="None")] == ["1"]
    with pytest.raises(InvalidInputError, match="max_results must be a whole number"):
        client.search_model_versions(max_results="a")  # type: ignore[arg-type]
    v = nbtrack.register_model(info.model_uri, "churn", await_registration_for=0)
    assert v.version == "2"
    assert nbtrack.pyfunc.load_model("models:/churn/2", suppress_warnings=True, dst_path=None)
