"""Saved models: the folder format, signatures and their checks, pyfunc, custom Python models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dependencies import needs
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

import nbtrack
import nbtrack.pyfunc
import nbtrack.sklearn
from nbtrack.exceptions import InvalidInputError, ModelNotFoundError, ModelSchemaError
from nbtrack.models import infer_signature


@pytest.fixture
def diabetes() -> tuple[pd.DataFrame, pd.Series, LinearRegression]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y, LinearRegression().fit(X, y)


def test_log_model_writes_a_complete_model_folder(store_dir: Path, diabetes: tuple) -> None:
    X, _, model = diabetes
    with nbtrack.start_run() as run:
        info = nbtrack.log_model(model, "model", input_example=X[:5])
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    folder = Path(nbtrack.get_run(run.info.run_id).info.artifact_uri) / "model"
    assert sorted(p.name for p in folder.iterdir()) == [
        "MLmodel.json", "input_example.json", "model.pkl", "requirements.txt"
    ]
    meta = json.loads((folder / "MLmodel.json").read_text())
    assert set(meta["flavors"]) == {"sklearn", "python_function"}
    assert meta["flavors"]["sklearn"]["sklearn_version"]
    assert meta["run_id"] == run.info.run_id and meta["python_version"]
    assert [c["name"] for c in meta["signature"]["inputs"]["columns"]] == list(X.columns)
    assert meta["signature"]["outputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1]}
    requirements = (folder / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("pandas==") for r in requirements)
    example = json.loads((folder / "input_example.json").read_text())
    assert example["dataframe_split"]["columns"] == list(X.columns)
    # The run's artifact index lists the model's files.
    client = nbtrack.Client()
    assert {p for p, _ in client.list_artifact_files(run.info.run_id)} >= {"model/MLmodel.json"}


def test_get_model_info_reads_a_model_without_loading_it(store_dir: Path, diabetes: tuple) -> None:
    X, _, model = diabetes
    with nbtrack.start_run():
        logged = nbtrack.log_model(model, "model", input_example=X[:5])
    info = nbtrack.models.get_model_info(logged.model_uri)
    assert (info.model_uri, info.run_id, info.artifact_path) == (
        logged.model_uri, logged.run_id, "model"
    )
    assert info.model_uuid == logged.model_uuid and set(info.flavors) == set(logged.flavors)
    assert info.signature is not None
    with pytest.raises(nbtrack.exceptions.NbtrackError):
        nbtrack.models.get_model_info(f"runs:/{logged.run_id}/no-such-model")


def test_log_model_starts_a_run_when_none_is_active(store_dir: Path, diabetes: tuple) -> None:
    model = diabetes[2]
    info = nbtrack.sklearn.log_model(model, "model")
    assert nbtrack.active_run().info.run_id == info.run_id
    nbtrack.end_run()
    assert isinstance(nbtrack.sklearn.load_model(info.model_uri), LinearRegression)


def test_pyfunc_checks_input_against_the_signature(store_dir: Path, diabetes: tuple) -> None:
    X, _, model = diabetes
    with nbtrack.start_run():
        info = nbtrack.log_model(model, "model", input_example=X[:5])
    pyfunc = nbtrack.pyfunc.load_model(info.model_uri)
    expected = model.predict(X[:4])
    # Columns in another order, extra columns (left out, named in a warning), records, an
    # ndarray: all work.
    np.testing.assert_allclose(pyfunc.predict(X[:4][list(reversed(X.columns))]), expected)
    with pytest.warns(UserWarning, match="does not name, left out: extra, id$"):
        np.testing.assert_allclose(pyfunc.predict(X[:4].assign(extra=1, id=2)), expected)
    np.testing.assert_allclose(pyfunc.predict(X[:4].to_dict(orient="records")), expected)
    np.testing.assert_allclose(pyfunc.predict(X[:4].to_numpy()), expected)
    with pytest.raises(ModelSchemaError, match=r"lacks column.*bmi"):
        pyfunc.predict(X[:4].drop(columns=["bmi"]))
    with pytest.raises(ModelSchemaError, match="column 'age' must be double"):
        pyfunc.predict(X[:4].assign(age="old"))
    with pytest.raises(ModelSchemaError, match="takes 10 columns"):
        pyfunc.predict(np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match="params must be a dict"):
        pyfunc.predict(X[:2], params=[1])  # type: ignore[arg-type]


def test_tensor_signatures_check_shape(tmp_path: Path) -> None:
    from nbtrack.models.signature import enforce_signature

    signature = infer_signature(np.zeros((3, 4), dtype="float32"))
    assert signature.inputs == {"type": "tensor", "dtype": "float32", "shape": [-1, 4]}
    assert enforce_signature(signature, [[1, 2, 3, 4]]).dtype == np.float32
    with pytest.raises(ModelSchemaError, match=r"shape \(-1, 4\)"):
        enforce_signature(signature, np.zeros((2, 5)))
    with pytest.raises(ModelSchemaError, match="float32 array"):
        enforce_signature(signature, [["a", "b", "c", "d"]])


def test_a_text_model_gets_its_inputs_whole_not_cut_to_the_example_s_width(
    store_dir: Path,
) -> None:
    """The signature of ["good", "bad"] is a '<U4' tensor: longer inputs must reach the model
    whole (they were cut to 4 characters, and predictions silently changed)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    docs = ["good", "bad", "good movie", "bad film"]
    pipe = make_pipeline(CountVectorizer(), LogisticRegression()).fit(docs, [1, 0, 1, 0])
    with nbtrack.start_run():
        info = nbtrack.sklearn.log_model(pipe, "m", input_example=["good", "bad"])
    loaded = nbtrack.pyfunc.load_model(info.model_uri)
    x = ["bad but good good good", "a very bad film indeed"]
    assert list(loaded.predict(x)) == list(pipe.predict(x))
    assert list(loaded.predict(np.array(x, dtype=object))) == list(pipe.predict(x))


def test_save_model_is_all_or_nothing(tmp_path: Path, diabetes: tuple) -> None:
    _, _, model = diabetes
    target = tmp_path / "m"
    with pytest.raises(InvalidInputError, match="serialization_format must be one of"):
        nbtrack.sklearn.save_model(model, target, serialization_format="joblib")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    nbtrack.sklearn.save_model(model, target)
    with pytest.raises(InvalidInputError, match="exists and is not empty"):
        nbtrack.sklearn.save_model(model, target)
    assert isinstance(nbtrack.load_model(target), LinearRegression)
    assert isinstance(nbtrack.load_model(f"file://{target}"), LinearRegression)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        nbtrack.load_model(tmp_path / "missing")


def test_bad_log_model_calls_leave_the_run_untouched(store_dir: Path, diabetes: tuple) -> None:
    _, _, model = diabetes
    with nbtrack.start_run() as run:
        with pytest.raises(InvalidInputError, match="cannot tell how to save"):
            nbtrack.log_model(object(), "model")
        with pytest.raises(InvalidInputError, match="relative path"):
            nbtrack.log_model(model, "../escape")
        with pytest.raises(InvalidInputError, match="must name a folder"):
            nbtrack.log_model(model, "")
        with pytest.raises(InvalidInputError, match="not allowed"):
            nbtrack.log_model(model, "model", registered_model_name="a/b")
        with pytest.raises(InvalidInputError, match="no method 'predict_log'"):
            nbtrack.sklearn.log_model(model, "model", pyfunc_predict_fn="predict_log")
    assert nbtrack.Client().list_artifact_files(run.info.run_id) == []
    assert nbtrack.Client().search_registered_models() == []


class AddN(nbtrack.pyfunc.PythonModel):
    def load_context(self, context: nbtrack.pyfunc.PythonModelContext) -> None:
        self.n = float(Path(context.artifacts["n"]).read_text())

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        scale = (params or {}).get("scale", 1)
        return (model_input["x"] + self.n) * scale


def test_custom_python_model_with_artifacts_and_params(store_dir: Path, tmp_path: Path) -> None:
    n_file = tmp_path / "n.txt"
    n_file.write_text("10")
    example = pd.DataFrame({"x": [1.0, 2.0]})
    with nbtrack.start_run():
        info = nbtrack.pyfunc.log_model(
            "adder", python_model=AddN(), artifacts={"n": str(n_file)}, input_example=example,
            registered_model_name="adder",
        )
    n_file.unlink()  # the model carries its own copy
    loaded = nbtrack.pyfunc.load_model("models:/adder/1")
    assert loaded.predict(example).tolist() == [11.0, 12.0]
    assert loaded.predict(example, params={"scale": 2}).tolist() == [22.0, 24.0]
    assert isinstance(loaded.unwrap_python_model(), AddN)
    assert info.signature is not None and info.signature.outputs is not None
    assert isinstance(nbtrack.load_model(info.model_uri), AddN)


class NoContext(nbtrack.pyfunc.PythonModel):
    def predict(self, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input["score"] * (params or {}).get("scale", 2)


def test_a_python_model_whose_predict_takes_no_context(store_dir: Path) -> None:
    """MLflow 3's form, ``predict(self, model_input, params=None)``, works as the older one."""
    example = pd.DataFrame({"score": [0.2, 0.9]})
    with nbtrack.start_run():
        info = nbtrack.pyfunc.log_model("b", python_model=NoContext(), input_example=example)
    assert info.signature is not None and info.signature.outputs is not None
    loaded = nbtrack.pyfunc.load_model(info.model_uri)
    assert loaded.predict(example).tolist() == [0.4, 1.8]
    assert loaded.predict(example, params={"scale": 10}).tolist() == [2.0, 9.0]


def test_params_a_model_does_not_take_are_left_out_with_a_warning(
    store_dir: Path, diabetes: tuple
) -> None:
    """As MLflow: params the model's own predict does not declare are ignored, with a warning
    that names them (they raised a TypeError from scikit-learn, a 500 from the server)."""
    X, _, model = diabetes
    with nbtrack.start_run():
        info = nbtrack.sklearn.log_model(model, "m", input_example=X[:3])
    loaded = nbtrack.pyfunc.load_model(info.model_uri)
    with pytest.warns(UserWarning, match="takes no param 'foo': ignored"):
        predicted = loaded.predict(X[:3], params={"foo": 1})
    assert np.allclose(predicted, model.predict(X[:3]))


def test_a_dict_or_records_input_example_is_columns(store_dir: Path) -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    model = LinearRegression().fit(X, [1.0, 2.0, 3.0])
    columns = {"type": "columns", "columns": [{"name": "a", "type": "double"},
                                              {"name": "b", "type": "double"}]}
    with nbtrack.start_run() as run:
        by_dict = nbtrack.sklearn.log_model(model, "d", input_example={"a": [1.0], "b": [0.0]})
        by_records = nbtrack.sklearn.log_model(model, "r", input_example=[{"a": 1.0, "b": 0.0}])
        with pytest.raises(InvalidInputError, match="input_example must hold rows"):
            nbtrack.sklearn.log_model(model, "s", input_example=3.0)
    assert by_dict.signature.inputs == by_records.signature.inputs == columns
    loaded = nbtrack.pyfunc.load_model(by_dict.model_uri)
    assert np.allclose(loaded.predict({"a": [2.0], "b": [1.0]}), model.predict(X[1:2]))
    files = nbtrack.Client().list_artifact_files(run.info.run_id)
    assert not any(path.startswith("s/") for path, _ in files)  # nothing of the refused one


def test_a_class_defined_in_a_notebook_loads_in_another_process(
    store_dir: Path, tmp_path: Path
) -> None:
    # The class lives in __main__ (as in a notebook); cloudpickle saves it by value.
    script = textwrap.dedent(
        f"""
        import nbtrack, nbtrack.pyfunc
        nbtrack.set_tracking_uri({str(store_dir)!r})

        class Doubler(nbtrack.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [2 * v for v in model_input["x"]]

        with nbtrack.start_run():
            info = nbtrack.pyfunc.log_model("m", python_model=Doubler())
        print(info.model_uri)
        """
    )
    uri = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.strip()
    assert nbtrack.pyfunc.load_model(uri).predict({"x": [1, 4]}) == [2, 8]


def test_the_flavor_modules_have_mlflow_names() -> None:
    for module in (nbtrack.sklearn, nbtrack.pyfunc):
        for name in ("log_model", "save_model", "load_model"):
            assert callable(getattr(module, name)), (module.__name__, name)
    assert nbtrack.pyfunc.PythonModel and nbtrack.models.ModelSignature


def test_a_loader_option_the_flavor_does_not_take_is_a_clear_error(
    tmp_path: Path, diabetes: tuple
) -> None:
    nbtrack.sklearn.save_model(diabetes[2], tmp_path / "m")
    for load in (nbtrack.load_model, nbtrack.pyfunc.load_model):
        with pytest.raises(InvalidInputError, match="takes no option map_location; it takes"):
            load(tmp_path / "m", map_location="cpu")


def test_a_logged_model_is_never_replaced(store_dir: Path, diabetes: tuple) -> None:
    X, y, model = diabetes
    with nbtrack.start_run() as run:
        first = nbtrack.log_model(model, "model", registered_model_name="m")
        with pytest.raises(InvalidInputError, match="log this one as 'model-2'"):
            nbtrack.log_model(LinearRegression(fit_intercept=False).fit(X, y), "model")
        second = nbtrack.sklearn.log_model(LinearRegression(fit_intercept=False).fit(X, y),
                                           name="model-2")  # MLflow 3's spelling
        with pytest.raises(InvalidInputError, match="give the model's folder once"):
            nbtrack.log_model(model, "a", name="b")
    assert second.model_uri == f"runs:/{run.info.run_id}/model-2"
    assert nbtrack.load_model("models:/m/1").fit_intercept is True  # still the first model
    assert first.registered_model_version == 1


def test_signature_conversions_never_lose_information(tmp_path: Path) -> None:
    from nbtrack.models.signature import enforce_signature

    ints = infer_signature(np.arange(6).reshape(3, 2))
    assert enforce_signature(ints, [[1.0, 2.0]]).dtype == np.int64  # whole numbers convert
    with pytest.raises(ModelSchemaError, match="does not convert without loss"):
        enforce_signature(ints, [[0.2, 1.0]])
    text = infer_signature(pd.DataFrame({"city": ["Oslo", "Rome"], "x": [1.0, 2.0]}))
    with pytest.raises(ModelSchemaError, match="column 'city' must be string"):
        enforce_signature(text, {"city": [3], "x": [1.0]})


def test_an_mlflow_signature_is_converted(tmp_path: Path, diabetes: tuple) -> None:
    """MLflow's ModelSignature (its inputs and outputs JSON strings in to_dict()) was stored as
    it was, and every later predict failed with a TypeError."""
    import mlflow.models as mlflow_models  # the test extra installs MLflow

    X, _, model = diabetes
    signature = mlflow_models.infer_signature(X, model.predict(X))
    nbtrack.sklearn.save_model(model, tmp_path / "m", signature=signature)
    loaded = nbtrack.pyfunc.load_model(tmp_path / "m")
    assert loaded.signature is not None and loaded.signature.inputs is not None
    assert [c["name"] for c in loaded.signature.inputs["columns"]] == list(X.columns)
    assert loaded.signature.outputs == {"type": "tensor", "dtype": "float64", "shape": [-1]}
    np.testing.assert_allclose(loaded.predict(X[:3]), model.predict(X[:3]))
    with pytest.raises(ModelSchemaError, match=r"lacks column.*bmi"):
        loaded.predict(X[:3].drop(columns=["bmi"]))
    tensor = mlflow_models.infer_signature(X.to_numpy(), model.predict(X))
    nbtrack.sklearn.save_model(model, tmp_path / "t", signature=tensor)
    assert nbtrack.pyfunc.load_model(tmp_path / "t").signature.inputs == {
        "type": "tensor", "dtype": "float64", "shape": [-1, 10]
    }
    # An optional column (required=False) may be left out; a required one may not.
    from mlflow.types import ColSpec, Schema

    optional = mlflow_models.ModelSignature(Schema(
        [ColSpec("double", c) for c in X.columns[:-1]] + [ColSpec("double", "s6", required=False)]
    ))
    nbtrack.sklearn.save_model(model, tmp_path / "o", signature=optional)
    from nbtrack.models.signature import enforce_signature

    schema = nbtrack.pyfunc.load_model(tmp_path / "o").signature
    taken = enforce_signature(schema, X[:2].drop(columns=["s6"]))
    assert list(taken.columns) == list(X.columns[:-1])
    with pytest.raises(ModelSchemaError, match=r"lacks column.*s5"):
        enforce_signature(schema, X[:2].drop(columns=["s5"]))
    with pytest.raises(InvalidInputError, match="signature must be a nbtrack"):
        nbtrack.sklearn.save_model(model, tmp_path / "d", signature={"inputs": "[]"})
    assert not (tmp_path / "d").exists()


def test_an_input_example_the_model_cannot_predict_on_gives_no_signature(
    store_dir: Path, diabetes: tuple
) -> None:
    """An example with 3 of the model's 10 columns gave a signature of shape (-1, 3), and the
    right input was then refused; now a warning names the error and no signature is kept."""
    X, y, _ = diabetes
    X = X.to_numpy()
    model = LinearRegression().fit(X, y)
    with nbtrack.start_run(), pytest.warns(UserWarning, match=r"input_example \(ValueError"):
        info = nbtrack.sklearn.log_model(model, name="m", input_example=X[:2, :3])
    assert info.signature is None
    loaded = nbtrack.pyfunc.load_model(info.model_uri)
    assert loaded.signature is None and loaded.metadata.input_example  # the example is kept
    np.testing.assert_allclose(loaded.predict(X[:4]), model.predict(X[:4]))


def test_text_is_not_taken_for_numbers(tmp_path: Path, diabetes: tuple) -> None:
    """The README's promise: a wrong type is a ModelSchemaError. Numeric strings were converted
    quietly and predicted on; MLflow refuses them too."""
    X, y, model = diabetes
    nbtrack.sklearn.save_model(model, tmp_path / "cols", input_example=X[:3])
    columns = nbtrack.pyfunc.load_model(tmp_path / "cols")
    with pytest.raises(ModelSchemaError, match=r"column 'age' must be double: it holds text"):
        columns.predict(X[:2].astype(str))
    # Numbers in an object column still convert.
    np.testing.assert_allclose(columns.predict(X[:2].astype(object)), model.predict(X[:2]))
    array_model = LinearRegression().fit(X.to_numpy(), y)
    nbtrack.sklearn.save_model(array_model, tmp_path / "tensor", input_example=X.to_numpy()[:3])
    tensor = nbtrack.pyfunc.load_model(tmp_path / "tensor")
    assert tensor.signature.inputs["dtype"] == "float64"
    with pytest.raises(ModelSchemaError, match=r"float64 array; the input holds text \('0\.03"):
        tensor.predict(X.to_numpy()[:2].astype(str))
    with pytest.raises(ModelSchemaError, match="holds text"):
        tensor.predict(X.to_numpy()[:2].astype(str).astype(object))
    np.testing.assert_allclose(tensor.predict(X.to_numpy()[:2].astype(object)),
                               array_model.predict(X.to_numpy()[:2]))


def test_mlflow_s_common_keywords_are_taken_by_every_flavor(
    store_dir: Path, tmp_path: Path, diabetes: tuple
) -> None:
    """pip_requirements, extra_pip_requirements, code_paths, conda_env, metadata, params and
    await_registration_for raised a TypeError on every flavor's log_model and save_model."""
    torch = needs("torch")
    model = diabetes[2]
    requirements = tmp_path / "req.txt"
    requirements.write_text("# pinned by hand\nscikit-learn==1.5.0\npandas  # any\n\n")
    with nbtrack.start_run(), pytest.warns(UserWarning) as warned:
        info = nbtrack.sklearn.log_model(
            model, name="m", pip_requirements=["scikit-learn==1.5.0", "numpy"],
            metadata={"team": "churn", "n": [1, 2]}, params={"alpha": 0.5},
            conda_env={"dependencies": ["python"]}, await_registration_for=300,
        )
        from_file = nbtrack.sklearn.log_model(model, name="f", pip_requirements=str(requirements))
        extra = nbtrack.log_model(model, "e", extra_pip_requirements=["requests>=2"])
        net = nbtrack.pytorch.log_model(torch.nn.Linear(2, 1), name="t", metadata={"k": 1},
                                        pip_requirements=["torch"])
        custom = nbtrack.pyfunc.log_model("p", python_model=NoContext(), params={"scale": 2})
    assert sorted(str(w.message).split(" is not")[0] for w in warned) == [
        "await_registration_for", "conda_env"
    ]
    assert all(w.filename == __file__ for w in warned)  # pointing at the call
    loaded = nbtrack.pyfunc.load_model(info.model_uri)
    assert loaded.metadata.requirements == ["scikit-learn==1.5.0", "numpy"]
    assert loaded.metadata.metadata == info.metadata == {"team": "churn", "n": [1, 2]}
    assert info.params == loaded.metadata.params == {"alpha": "0.5"}
    assert nbtrack.pyfunc.load_model(from_file.model_uri).metadata.requirements == [
        "scikit-learn==1.5.0", "pandas"
    ]
    extra_requirements = nbtrack.pyfunc.load_model(extra.model_uri).metadata.requirements
    assert extra_requirements[-1] == "requests>=2"
    assert any(r.startswith("scikit-learn==") for r in extra_requirements)
    assert nbtrack.pyfunc.load_model(net.model_uri).metadata.requirements == ["torch"]
    assert net.metadata == {"k": 1} and custom.params == {"scale": "2"}
    with pytest.raises(InvalidInputError, match="not both"):
        nbtrack.sklearn.save_model(model, tmp_path / "both", pip_requirements=["a"],
                                   extra_pip_requirements=["b"])
    with pytest.raises(InvalidInputError, match="cannot be read"):
        nbtrack.sklearn.save_model(model, tmp_path / "nofile", pip_requirements="missing.txt")
    with pytest.raises(InvalidInputError, match="metadata must hold JSON"):
        nbtrack.sklearn.save_model(model, tmp_path / "meta", metadata={"f": object()})
    with pytest.raises(TypeError, match="takes no keyword serialisation_format; besides"):
        nbtrack.sklearn.save_model(model, tmp_path / "typo", serialisation_format="pickle")
    assert not any(p.name in ("both", "nofile", "meta", "typo") for p in tmp_path.iterdir())


def test_code_paths_are_saved_with_the_model_and_importable_where_it_loads(
    tmp_path: Path, diabetes: tuple
) -> None:
    """A model whose pickle imports a module of the user's loads in a process that does not
    have that module, from the copy code_paths put in the model's code/ folder."""
    X, y, _ = diabetes
    source = tmp_path / "src"
    source.mkdir()
    (source / "shifted.py").write_text(textwrap.dedent(
        """
        from sklearn.linear_model import LinearRegression

        class Shifted(LinearRegression):
            def predict(self, X):
                return super().predict(X) + 1000.0
        """
    ))
    sys.path.insert(0, str(source))
    try:
        import shifted  # type: ignore[import-not-found]

        model = shifted.Shifted().fit(X, y)
        nbtrack.sklearn.save_model(model, tmp_path / "m", code_paths=[str(source / "shifted.py")],
                                   serialization_format="pickle", input_example=X[:2])
    finally:
        sys.path.remove(str(source))
        sys.modules.pop("shifted", None)
    assert (tmp_path / "m" / "code" / "shifted.py").is_file()
    script = textwrap.dedent(
        f"""
        import pandas as pd, nbtrack.pyfunc
        X = pd.read_json({str(tmp_path / "X.json")!r})
        print(nbtrack.pyfunc.load_model({str(tmp_path / "m")!r}).predict(X)[0])
        """
    )
    X[:1].to_json(tmp_path / "X.json")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert float(out) == pytest.approx(model.predict(X[:1])[0])
    with pytest.raises(InvalidInputError, match="does not exist"):
        nbtrack.sklearn.save_model(model, tmp_path / "x", code_paths=[str(tmp_path / "none.py")])


def test_an_input_example_with_params(store_dir: Path, diabetes: tuple) -> None:
    """MLflow's ``input_example=(example, params)`` crashed in numpy; the params are now kept
    with the example (in a request's form) and passed to the prediction that infers the
    output."""
    X, _, model = diabetes
    example = pd.DataFrame({"score": [0.2, 0.9]})
    with nbtrack.start_run():
        custom = nbtrack.pyfunc.log_model("c", python_model=NoContext(),
                                          input_example=(example, {"scale": 10}))
        with pytest.warns(UserWarning, match="takes no param 'b': ignored"):
            estimator = nbtrack.sklearn.log_model(model, name="s",
                                                  input_example=(X[:2], {"b": 1.0}))
    assert custom.signature.inputs["columns"] == [{"name": "score", "type": "double"}]
    assert custom.signature.outputs is not None  # predicted on, with the params
    saved = json.loads((_model_dir(custom.model_uri) / "input_example.json").read_text())
    assert saved == {"dataframe_split": {"columns": ["score"], "index": [0, 1],
                                         "data": [[0.2], [0.9]]}, "params": {"scale": 10}}
    loaded = nbtrack.pyfunc.load_model(estimator.model_uri)
    assert [c["name"] for c in loaded.signature.inputs["columns"]] == list(X.columns)
    np.testing.assert_allclose(loaded.predict(X[:2]), model.predict(X[:2]))


def _model_dir(uri: str) -> Path:
    from nbtrack.models.uri import resolve_model_dir

    return resolve_model_dir(uri)
