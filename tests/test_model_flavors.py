"""Model flavors against the real libraries: XGBoost, LightGBM, PyTorch, and scikit-learn's
three serialization formats. Each model is logged under a run, loaded back three ways (the
flavor's load_model, nbtrack.load_model, nbtrack.pyfunc.load_model) and must predict as the
original; bad input raises a clear error and leaves nothing in the run's artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from dependencies import needs
from sklearn.datasets import load_diabetes, load_iris

import nbtrack
from nbtrack.exceptions import InvalidInputError
from nbtrack.models.uri import resolve_model_dir

# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.head(120), y.head(120)


def _folder(uri: str) -> Path:
    return Path(resolve_model_dir(uri))


def _settings(uri: str, flavor: str) -> dict[str, Any]:
    flavors: dict[str, Any] = json.loads((_folder(uri) / "MLmodel.json").read_text())["flavors"]
    assert flavors["python_function"]["loader_module"] == f"nbtrack.models.flavors.{flavor}"
    settings: dict[str, Any] = flavors[flavor]
    return settings


def _requirements(uri: str) -> dict[str, str]:
    lines = (_folder(uri) / "requirements.txt").read_text().split()
    return dict(line.split("==", 1) for line in lines)


def _assert_nothing_logged(run_id: str) -> None:
    client = nbtrack.Client()
    assert client.list_artifact_files(run_id) == []
    root = Path(client.get_artifact_uri(run_id))
    assert not root.exists() or not any(root.rglob("*"))


def _assert_same(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def _check_pyfunc(uri: str, frame: pd.DataFrame, expected: Any) -> None:
    model = nbtrack.pyfunc.load_model(uri)
    _assert_same(model.predict(frame), expected)
    _assert_same(model.predict(frame.to_numpy()), expected)


# -- XGBoost ------------------------------------------------------------------------------------


def _xgb_distribution() -> str:
    for name in ("xgboost", "xgboost-cpu"):
        try:
            importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        return name
    raise AssertionError("xgboost imports but no distribution provides it")


@pytest.mark.parametrize("model_format", ["ubj", "json"])
def test_xgboost_booster_round_trip(store_dir: Path, iris: Any, model_format: str) -> None:
    X, y = iris
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3},
                        xgb.DMatrix(X, label=y), num_boost_round=5)
    expected = booster.predict(xgb.DMatrix(X))
    with nbtrack.start_run():
        info = nbtrack.xgboost.log_model(booster, "model", input_example=X.head(),
                                         model_format=model_format,
                                         registered_model_name="iris-xgb")
    assert info.registered_model_version == 1
    settings = _settings(info.model_uri, "xgboost")
    assert settings["model_format"] == model_format
    assert settings["xgb_version"] == xgb.__version__
    assert (_folder(info.model_uri) / f"model.{model_format}").is_file()
    assert not list(_folder(info.model_uri).glob("*.pkl"))

    for loaded in (nbtrack.xgboost.load_model(info.model_uri),
                   nbtrack.load_model(info.model_uri),
                   nbtrack.load_model("models:/iris-xgb/1")):
        assert type(loaded) is xgb.Booster
        _assert_same(loaded.predict(xgb.DMatrix(X)), expected)
    _check_pyfunc(info.model_uri, X, expected)
    _check_pyfunc("models:/iris-xgb/1", X, expected)
    assert _requirements(info.model_uri)[_xgb_distribution()] == \
        importlib_metadata.version(_xgb_distribution())


def test_xgboost_booster_without_signature_takes_a_bare_array(store_dir: Path, iris: Any) -> None:
    X, y = iris  # trained on a DataFrame: the booster knows feature names
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3},
                        xgb.DMatrix(X, label=y), num_boost_round=3)
    with nbtrack.start_run():
        info = nbtrack.xgboost.log_model(booster, "model")
    assert info.signature is None
    _check_pyfunc(info.model_uri, X, booster.predict(xgb.DMatrix(X)))


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_xgboost_sklearn_wrappers(store_dir: Path, iris: Any, diabetes: Any, kind: str) -> None:
    if kind == "classifier":
        X, y = iris
        model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X.to_numpy(), y)
    else:
        X, y = diabetes
        model = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(X.to_numpy(), y)
    expected = model.predict(X.to_numpy())
    with nbtrack.start_run():
        info = nbtrack.log_model(model, "model", input_example=X.head(),
                                 registered_model_name=f"xgb-{kind}")
        direct = nbtrack.xgboost.log_model(model, "direct", model_format="json")
    assert set(info.flavors) == {"xgboost", "python_function"}
    settings = _settings(info.model_uri, "xgboost")
    assert settings["model_type"] == "sklearn"
    assert settings["model_class"] == f"xgboost.sklearn:{type(model).__qualname__}"
    for uri in (info.model_uri, direct.model_uri, f"models:/xgb-{kind}/1"):
        for loaded in (nbtrack.xgboost.load_model(uri), nbtrack.load_model(uri)):
            assert type(loaded) is type(model)
            _assert_same(loaded.predict(X.to_numpy()), expected)
    if kind == "classifier":
        loaded = nbtrack.xgboost.load_model(info.model_uri)
        _assert_same(loaded.predict_proba(X.to_numpy()), model.predict_proba(X.to_numpy()))
    _check_pyfunc(info.model_uri, X, expected)
    requirements = _requirements(info.model_uri)
    assert _xgb_distribution() in requirements
    assert "scikit-learn" in requirements


def test_xgboost_ranker_round_trip(store_dir: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    qid = np.repeat(np.arange(6), 10)
    ranker = xgb.XGBRanker(n_estimators=4).fit(X, y, qid=qid)
    with nbtrack.start_run():
        info = nbtrack.xgboost.log_model(ranker, "model", input_example=X[:5])
    loaded = nbtrack.load_model(info.model_uri)
    assert type(loaded) is xgb.XGBRanker
    _assert_same(loaded.predict(X), ranker.predict(X))
    _assert_same(nbtrack.pyfunc.load_model(info.model_uri).predict(X), ranker.predict(X))


class _MyClassifier(xgb.XGBClassifier):  # type: ignore[misc]
    pass


@pytest.mark.parametrize(
    ("make_model", "options", "message"),
    [
        (lambda: __import__("sklearn.linear_model").linear_model.LinearRegression(), {},
         "xgboost.Booster"),
        (lambda: xgb.DMatrix(np.ones((3, 2))), {}, "got xgboost.core.DMatrix"),
        (lambda: xgb.XGBClassifier(n_estimators=1).fit(np.eye(4), [0, 1, 0, 1]),
         {"model_format": "pickle"}, "ubj, json"),
        (lambda: _MyClassifier(n_estimators=1).fit(np.eye(4), [0, 1, 0, 1]), {},
         "nbtrack.sklearn.log_model"),
        (lambda: xgb.XGBRegressor(), {}, "XGBRegressor is not fitted"),
    ],
    ids=["sklearn-model", "dmatrix", "bad-format", "subclass", "not-fitted"],
)
def test_xgboost_bad_input(store_dir: Path, make_model: Any, options: dict[str, Any],
                           message: str) -> None:
    with nbtrack.start_run() as run, pytest.raises(InvalidInputError, match=message):
        nbtrack.xgboost.log_model(make_model(), "model", **options)
    _assert_nothing_logged(run.info.run_id)


def test_xgboost_loads_only_xgboost_classes(store_dir: Path, tmp_path: Path) -> None:
    model = xgb.XGBRegressor(n_estimators=2).fit(np.eye(4), [0.0, 1.0, 2.0, 3.0])
    folder = tmp_path / "m"
    nbtrack.xgboost.save_model(model, folder)
    meta = json.loads((folder / "MLmodel.json").read_text())
    meta["flavors"]["xgboost"]["model_class"] = "subprocess:Popen"
    (folder / "MLmodel.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="only classes of the xgboost package"):
        nbtrack.xgboost.load_model(folder)


# -- LightGBM -----------------------------------------------------------------------------------


def test_lightgbm_booster_round_trip(store_dir: Path, iris: Any) -> None:
    X, y = iris
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                        lgb.Dataset(X, label=y), num_boost_round=5)
    expected = booster.predict(X)
    with nbtrack.start_run():
        info = nbtrack.lightgbm.log_model(booster, "model", input_example=X.head(),
                                          registered_model_name="iris-lgb")
    assert info.registered_model_version == 1
    settings = _settings(info.model_uri, "lightgbm")
    assert settings["serialization_format"] == "text"
    assert settings["lgb_version"] == lgb.__version__
    data = _folder(info.model_uri) / settings["data"]
    assert data.read_text().startswith("tree")  # LightGBM's own text format, not a pickle
    for loaded in (nbtrack.lightgbm.load_model(info.model_uri),
                   nbtrack.load_model(info.model_uri),
                   nbtrack.load_model("models:/iris-lgb/1")):
        assert type(loaded) is lgb.Booster
        _assert_same(loaded.predict(X), expected)
    _check_pyfunc(info.model_uri, X, expected)
    assert _requirements(info.model_uri)["lightgbm"] == lgb.__version__


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lightgbm_sklearn_wrappers(store_dir: Path, iris: Any, diabetes: Any, kind: str) -> None:
    if kind == "classifier":
        X, y = iris
        model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    else:
        X, y = diabetes
        model = lgb.LGBMRegressor(n_estimators=5, min_child_samples=5, verbose=-1).fit(X, y)
    expected = model.predict(X)
    with nbtrack.start_run():
        info = nbtrack.log_model(model, "model", input_example=X.head(),
                                 registered_model_name=f"lgb-{kind}")
        direct = nbtrack.lightgbm.log_model(model, "direct")
    assert set(info.flavors) == {"lightgbm", "python_function"}
    settings = _settings(info.model_uri, "lightgbm")
    assert settings["serialization_format"] == "cloudpickle"
    assert settings["model_class"] == f"lightgbm.sklearn.{type(model).__qualname__}"
    for uri in (info.model_uri, direct.model_uri, f"models:/lgb-{kind}/1"):
        for loaded in (nbtrack.lightgbm.load_model(uri), nbtrack.load_model(uri)):
            assert type(loaded) is type(model)
            _assert_same(loaded.predict(X), expected)
    _check_pyfunc(info.model_uri, X, expected)
    requirements = _requirements(info.model_uri)
    assert requirements["lightgbm"] == lgb.__version__
    assert "cloudpickle" in requirements


@pytest.mark.parametrize(
    "make_model",
    [lambda: lgb.Dataset(np.ones((3, 2))),
     lambda: xgb.XGBClassifier(),
     lambda: "model.txt"],
    ids=["dataset", "xgboost-model", "string"],
)
def test_lightgbm_wrong_model_type(store_dir: Path, make_model: Any) -> None:
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match=r"lightgbm flavor saves a lightgbm\.Booster"),
    ):
        nbtrack.lightgbm.log_model(make_model(), "model")
    _assert_nothing_logged(run.info.run_id)


def test_lightgbm_refuses_an_unfitted_wrapper(store_dir: Path) -> None:
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match="LGBMRegressor is not fitted: call fit"),
    ):
        nbtrack.log_model(lgb.LGBMRegressor(), "model")
    _assert_nothing_logged(run.info.run_id)


def test_generic_log_model_refuses_unknown_types(store_dir: Path) -> None:
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match="cannot tell how to save"),
    ):
        nbtrack.log_model(object(), "model")
    _assert_nothing_logged(run.info.run_id)


# -- PyTorch ------------------------------------------------------------------------------------


@pytest.fixture
def torch_net() -> Any:
    torch = needs("torch")
    from model_classes import TinyNet

    torch.manual_seed(0)
    net = TinyNet(n_in=4, n_hidden=6, n_out=3)
    return net


def _torch_predict(net: Any, X: Any) -> Any:
    import torch

    with torch.no_grad():
        return net(torch.tensor(np.array(X, dtype=np.float32))).numpy()


def test_pytorch_pickle_round_trip(store_dir: Path, iris: Any, torch_net: Any) -> None:
    import torch

    X, _ = iris
    expected = _torch_predict(torch_net, X)
    example = torch.tensor(X.head().to_numpy(dtype=np.float32))
    with nbtrack.start_run():
        info = nbtrack.pytorch.log_model(torch_net, "model", input_example=example,
                                         registered_model_name="iris-torch")
    assert info.registered_model_version == 1
    assert info.signature is not None
    assert info.signature.inputs == {"type": "tensor", "dtype": "float32", "shape": [-1, 4]}
    assert info.signature.outputs == {"type": "tensor", "dtype": "float32", "shape": [-1, 3]}
    settings = _settings(info.model_uri, "pytorch")
    assert settings["serialization_format"] == "pickle"
    assert settings["pytorch_version"] == torch.__version__
    assert torch_net.training  # signature inference left the module's mode alone
    for loaded in (nbtrack.pytorch.load_model(info.model_uri),
                   nbtrack.load_model(info.model_uri),
                   nbtrack.load_model("models:/iris-torch/1")):
        assert type(loaded) is type(torch_net)
        _assert_same(_torch_predict(loaded, X), expected)
    _check_pyfunc(info.model_uri, X, expected)
    _check_pyfunc("models:/iris-torch/1", X, expected)
    requirements = _requirements(info.model_uri)
    # pinned without a local version label ("+cpu"), which no index serves
    assert requirements["torch"] == importlib_metadata.version("torch").split("+")[0]
    assert "cloudpickle" in requirements


def test_pytorch_state_dict_round_trip(store_dir: Path, iris: Any, torch_net: Any) -> None:
    import torch

    X, _ = iris
    expected = _torch_predict(torch_net, X)
    kwargs = {"n_in": 4, "n_hidden": 6, "n_out": 3}
    with nbtrack.start_run():
        info = nbtrack.pytorch.log_model(torch_net, "model", input_example=X.head(),
                                         serialization_format="state_dict", init_kwargs=kwargs,
                                         registered_model_name="iris-torch-weights")
        generic = nbtrack.log_model(torch_net, "generic", serialization_format="state_dict",
                                    init_kwargs=kwargs)
    settings = _settings(info.model_uri, "pytorch")
    assert settings["serialization_format"] == "state_dict"
    assert settings["model_class"] == "model_classes:TinyNet"
    assert settings["init_kwargs"] == kwargs
    weights = torch.load(_folder(info.model_uri) / settings["data"], weights_only=True)
    assert set(weights) == set(torch_net.state_dict())
    for uri in (info.model_uri, generic.model_uri, "models:/iris-torch-weights/1"):
        for loaded in (nbtrack.pytorch.load_model(uri), nbtrack.load_model(uri)):
            assert type(loaded) is type(torch_net)
            _assert_same(_torch_predict(loaded, X), expected)
    # a DataFrame example gives a column signature: arrays are matched to its columns
    _check_pyfunc(info.model_uri, X, expected)
    assert "cloudpickle" not in _requirements(info.model_uri)


def test_pytorch_state_dict_loads_in_a_fresh_process(tmp_path: Path, torch_net: Any) -> None:
    folder = tmp_path / "net"
    nbtrack.pytorch.save_model(torch_net, folder, serialization_format="state_dict",
                               init_kwargs={"n_in": 4, "n_hidden": 6, "n_out": 3})
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    code = (
        "import sys, numpy as np, nbtrack\n"
        "m = nbtrack.pyfunc.load_model(sys.argv[1])\n"
        "print(type(m.get_raw_model()).__name__)\n"
        "np.save(sys.argv[2], m.predict(np.load(sys.argv[3])))\n"
    )
    np.save(tmp_path / "x.npy", x)
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(tmp_path / "y.npy"), str(tmp_path / "x.npy")],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TinyNet"
    _assert_same(np.load(tmp_path / "y.npy"), _torch_predict(torch_net, x))


def test_pytorch_pickle_takes_a_class_defined_in_main(store_dir: Path, iris: Any) -> None:
    torch = needs("torch")

    class NotebookNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            return self.linear(x)

    NotebookNet.__module__ = "__main__"  # as if typed in a notebook cell
    NotebookNet.__qualname__ = "NotebookNet"
    net = NotebookNet()
    X, _ = iris
    with nbtrack.start_run():
        info = nbtrack.log_model(net, "model", input_example=X.to_numpy()[:5])
    loaded = nbtrack.pytorch.load_model(info.model_uri)
    _assert_same(_torch_predict(loaded, X), _torch_predict(net, X))
    _check_pyfunc(info.model_uri, X, _torch_predict(net, X))


def test_pytorch_state_dict_refuses_a_class_from_main(store_dir: Path) -> None:
    torch = needs("torch")

    class NotebookNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

    NotebookNet.__module__ = "__main__"
    NotebookNet.__qualname__ = "NotebookNet"
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match=r"NotebookNet is defined in __main__"),
    ):
        nbtrack.pytorch.log_model(NotebookNet(), "model", serialization_format="state_dict")
    _assert_nothing_logged(run.info.run_id)


def test_pytorch_state_dict_refuses_a_local_class(store_dir: Path) -> None:
    torch = needs("torch")

    class LocalNet(torch.nn.Module):
        pass

    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match="defined inside a function"),
    ):
        nbtrack.pytorch.log_model(LocalNet(), "model", serialization_format="state_dict")
    _assert_nothing_logged(run.info.run_id)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"serialization_format": "state_dict"},
         r"do not load into model_classes:TinyNet\(\*\*\{\}\): .*size mismatch"),
        ({"serialization_format": "state_dict", "init_kwargs": {"n_in": 4, "n_hidden": 5}},
         "do not load into .*Give the init_kwargs"),
        ({"serialization_format": "state_dict", "init_kwargs": {"width": 4}},
         r"cannot build model_classes:TinyNet\(\*\*\{'width': 4\}\).*unexpected keyword"),
        ({"serialization_format": "state_dict", "init_kwargs": {"n_in": np.int64(4)}},
         "init_kwargs must hold JSON values only"),
        ({"serialization_format": "state_dict", "init_kwargs": [4, 6, 3]},
         "init_kwargs must be a dict"),
        ({"init_kwargs": {"n_in": 4}}, "init_kwargs is used only with"),
        ({"serialization_format": "torchscript"}, "must be one of pickle, state_dict"),
    ],
    ids=["no-kwargs", "wrong-shape", "unknown-kwarg", "not-json", "not-a-dict",
         "kwargs-with-pickle", "bad-format"],
)
def test_pytorch_bad_options(store_dir: Path, torch_net: Any, options: dict[str, Any],
                             message: str) -> None:
    with nbtrack.start_run() as run, pytest.raises(InvalidInputError, match=message):
        nbtrack.pytorch.log_model(torch_net, "model", **options)
    _assert_nothing_logged(run.info.run_id)


def test_pytorch_wrong_model_type(store_dir: Path) -> None:
    needs("torch")
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match=r"saves a torch.nn.Module; got .*XGBRegressor"),
    ):
        nbtrack.pytorch.log_model(xgb.XGBRegressor(), "model")
    _assert_nothing_logged(run.info.run_id)


def test_pytorch_pyfunc_refuses_params(store_dir: Path, torch_net: Any) -> None:
    with nbtrack.start_run():
        info = nbtrack.pytorch.log_model(torch_net, "model")
    with pytest.raises(InvalidInputError, match="takes no params; got top_k"):
        nbtrack.pyfunc.load_model(info.model_uri).predict(np.ones((1, 4)), params={"top_k": 1})


# -- scikit-learn: the three serialization formats ---------------------------------------------


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle", "skops"])
def test_sklearn_serialization_formats(store_dir: Path, iris: Any, fmt: str) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    expected = model.predict(X)
    with nbtrack.start_run():
        info = nbtrack.sklearn.log_model(model, "model", input_example=X.head(),
                                         serialization_format=fmt,
                                         registered_model_name=f"tree-{fmt}")
    settings = _settings(info.model_uri, "sklearn")
    assert settings["serialization_format"] == fmt
    requirements = _requirements(info.model_uri)
    assert "scikit-learn" in requirements
    if fmt != "pickle":
        assert fmt in requirements
    trusted = ["sklearn.tree._tree.Tree"] if fmt == "skops" else None
    uris = (info.model_uri, f"models:/tree-{fmt}/1")
    for uri in uris:
        loaded = nbtrack.sklearn.load_model(uri, trusted=trusted)
        assert type(loaded) is DecisionTreeClassifier
        _assert_same(loaded.predict(X), expected)
        generic = nbtrack.load_model(uri, trusted=trusted) if trusted else nbtrack.load_model(uri)
        _assert_same(generic.predict(X), expected)
        pyfunc = nbtrack.pyfunc.load_model(uri, trusted=trusted) if trusted else \
            nbtrack.pyfunc.load_model(uri)
        _assert_same(pyfunc.predict(X), expected)
        _assert_same(pyfunc.predict(X.to_numpy()), expected)


def test_sklearn_skops_refuses_untrusted_types(store_dir: Path, iris: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    model = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with nbtrack.start_run():
        info = nbtrack.log_model(model, "model", serialization_format="skops")
    for load in (nbtrack.sklearn.load_model, nbtrack.load_model, nbtrack.pyfunc.load_model):
        with pytest.raises(InvalidInputError,
                           match=r"not trusted by default: sklearn\.tree\._tree\.Tree.*"
                                 r"trusted=\['sklearn\.tree\._tree\.Tree'\]"):
            load(info.model_uri)
    # trusting something else is not enough
    with pytest.raises(InvalidInputError, match=r"sklearn\.tree\._tree\.Tree"):
        nbtrack.sklearn.load_model(info.model_uri, trusted=["numpy.ndarray"])


def test_sklearn_bad_format(store_dir: Path, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    with (
        nbtrack.start_run() as run,
        pytest.raises(InvalidInputError, match="cloudpickle, pickle, skops; got 'joblib'"),
    ):
        nbtrack.sklearn.log_model(LogisticRegression(max_iter=1000).fit(X, y), "model",
                                  serialization_format="joblib")
    _assert_nothing_logged(run.info.run_id)


def test_flavor_facades() -> None:
    assert nbtrack.xgboost.MODEL_FORMATS == ("ubj", "json")
    for module in (nbtrack.xgboost, nbtrack.lightgbm, nbtrack.pytorch):
        for name in ("log_model", "save_model", "load_model"):
            assert name in module.__all__
            assert callable(getattr(module, name))
            assert getattr(module, name).__doc__
