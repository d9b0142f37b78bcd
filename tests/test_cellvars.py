"""What a ``%%track`` cell's source gives as params and metrics (pure functions, no shell)."""

from __future__ import annotations

import ast
import keyword
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrack.cellvars import (
    METRIC_PATTERNS,
    assigned_names,
    literal_params,
    looks_like_metric,
    scalar,
)

# -- literal_params: captured ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("n = 200", {"n": 200}),
        ("lr = 0.001", {"lr": 0.001}),
        ("lr = 1e-3", {"lr": 0.001}),
        ("shift = -3", {"shift": -3}),
        ("shift = -0.5", {"shift": -0.5}),
        ("plus = +2", {"plus": 2}),
        ("opt = 'adam'", {"opt": "adam"}),
        ('opt = "adam"', {"opt": "adam"}),
        ("flag = True", {"flag": True}),
        ("flag = False", {"flag": False}),
        ("seed = None", {"seed": None}),
        ("layers = [64, 32]", {"layers": [64, 32]}),
        ("shape = (3, 4)", {"shape": (3, 4)}),
        ("cfg = {'a': 1, 'b': [1, 2], 'c': None}", {"cfg": {"a": 1, "b": [1, 2], "c": None}}),
        ("nested = [(1, 'a'), {'k': [True, -1.5]}]", {"nested": [(1, "a"), {"k": [True, -1.5]}]}),
        ("empty = []", {"empty": []}),
        ("opt: str = 'adam'", {"opt": "adam"}),
        ("a = b = 1", {"a": 1, "b": 1}),
    ],
)
def test_literal_params_captures_literals(source: str, expected: dict[str, object]) -> None:
    assert literal_params(source) == expected


def test_literal_params_last_literal_wins_and_keeps_order() -> None:
    src = "lr = 0.1\nbatch = 32\nlr = 0.01\n"
    assert literal_params(src) == {"lr": 0.01, "batch": 32}
    assert list(literal_params(src)) == ["lr", "batch"]


def test_literal_params_skip_names_the_cell_also_computes() -> None:
    # a name the cell also binds by computation is state, not a setting
    assert literal_params("lr = 0.1\nlr = lr * 2\n") == {}
    assert literal_params("w = 0.0\nfor i in range(3):\n    w += 0.1\n") == {}
    assert literal_params("n = 3\nfor n in range(2):\n    pass\n") == {}
    assert literal_params("a = 1\nb, c = 2, 3\nwith open('f') as a:\n    pass\n") == {}
    assert literal_params("epochs = 5\nfor i in range(epochs):\n    w = i\n") == {"epochs": 5}


def test_literal_params_several_statements() -> None:
    src = (
        "import numpy as np\n"
        "n_estimators = 200\n"
        "max_depth = 8\n"
        "X = np.zeros((3, 2))\n"
        "name = 'rf'\n"
        "acc = 0.5\n"  # metric-like names are filtered by the magic, not here
    )
    assert literal_params(src) == {"n_estimators": 200, "max_depth": 8, "name": "rf", "acc": 0.5}


# -- literal_params: not captured ----------------------------------------------------------------


def test_constant_arithmetic_is_not_a_literal() -> None:
    # ast.literal_eval rejects `1 + 2` (it only folds `number +/- complex`), so it is no param
    with pytest.raises(ValueError):
        ast.literal_eval("1 + 2")
    assert literal_params("x = 1 + 2") == {}
    assert literal_params("x = 2 * 3") == {}
    assert literal_params("x = 10 ** 3") == {}
    assert literal_params("x = --1") == {}


@pytest.mark.parametrize(
    "source",
    [
        "x = f(1)",
        "x = dict(a=1)",
        "x = float('nan')",
        "x = y",
        "x = np.pi",
        "x = f'{y}'",
        "x = f'plain'",
        "x = {1, 2}",
        "x = b'bytes'",
        "x = 1j",
        "x = 1 + 2j",
        "x = ...",
        "x = [i for i in range(3)]",
        "x = {k: 1 for k in 'ab'}",
        "x = (i for i in range(3))",
        "x = lambda: 1",
        "x = [1, y]",
        "x = {'a': y}",
        "x = [1, {2, 3}]",
        "x = (1, b'a')",
        "x = not True",
        "obj.attr = 1",
        "d['k'] = 1",
        "a, b = 1, 2",
        "[a, b] = [1, 2]",
        "a, *rest = 1, 2, 3",
        "x += 1",
        "x: int",
        "if True:\n    x = 1",
        "for i in range(3):\n    x = 1",
        "while False:\n    x = 1",
        "with open('f') as fh:\n    x = 1",
        "try:\n    x = 1\nexcept Exception:\n    pass",
        "def f():\n    x = 1",
        "class C:\n    x = 1",
        "print(x := 1)",
    ],
)
def test_literal_params_ignores(source: str) -> None:
    assert literal_params(source) == {}


def test_literal_params_syntax_error_gives_nothing() -> None:
    assert literal_params("x = 1\ny = (\n") == {}
    assert literal_params("def (:") == {}


def test_literal_params_ipython_syntax_gives_nothing_here() -> None:
    # the raw cell is not Python; the magic passes IPython's transformed cell instead
    assert literal_params("!pip list\nx = 1") == {}
    assert literal_params("%time y = 2\nx = 1") == {}
    assert literal_params("x = 1\nfiles = !ls") == {}


def test_parsing_the_cell_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert literal_params("y = 0\nx = 1 if y is 1 else 2\nz = '\\d'") == {"y": 0, "z": "\\d"}
        assert literal_params("w = 1if y else 2") == {}
        assert assigned_names("acc = 1 if y is 1 else 2") == ["acc"]


def test_literal_params_deep_nesting_does_not_raise() -> None:
    assert literal_params("x = " + "-" * 100_000 + "1") == {}
    assert literal_params("x = " + " + ".join(["1"] * 100_000)) == {}
    assert literal_params("x = " + "[" * 5000 + "]" * 5000) == {}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_literal_params_never_raises(source: str) -> None:
    result = literal_params(source)
    assert isinstance(result, dict)
    assert isinstance(assigned_names(source), list)


_TOKENS = [
    "x",
    "acc",
    " = ",
    "=",
    "1",
    "-",
    "+",
    "2.5",
    "1j",
    "'a'",
    "b'x'",
    "f'{x}'",
    "...",
    "None",
    "True",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "*",
    "**",
    "lambda",
    "for",
    "in",
    "if",
    "\n",
    "    ",
    ";",
    "not",
    "%time ",
    "!",
    "#",
    "\\",
    '"""',
    "1e999",
    "0x1f",
    "_",
    ".",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join))
def test_literal_params_never_raises_on_python_like_text(source: str) -> None:
    for name, value in literal_params(source).items():
        assert name.isidentifier()
        assert value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))
    assert all(n.isidentifier() for n in assigned_names(source))


_ident = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and not keyword.issoftkeyword(s)
)
_leaf = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.booleans(),
    st.none(),
)
_literal = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_ident, _literal)
def test_literal_params_round_trips_repr(name: str, value: object) -> None:
    assert literal_params(f"{name} = {value!r}") == {name: value}


# -- assigned_names ---------------------------------------------------------------------------


def test_assigned_names_assignment_kinds() -> None:
    src = (
        "a = 1\n"
        "b = c = f()\n"
        "d, (e, *g) = 1, (2, 3, 4)\n"
        "h += 1\n"
        "i: int = 3\n"
        "j: int\n"  # an annotation alone binds nothing
        "obj.k = 1\n"
        "m['n'] = 1\n"
        "a = 2\n"
    )
    assert assigned_names(src) == ["a", "b", "c", "d", "e", "g", "h", "i"]


def test_assigned_names_loops_and_with() -> None:
    src = (
        "for epoch, (x, y) in enumerate(batches):\n"
        "    loss = step(x, y)\n"
        "    if loss < best:\n"
        "        best = loss\n"
        "with ctx() as c, other() as (p, q):\n"
        "    acc = 0.9\n"
        "    for t in ts:\n"
        "        val_loss = t\n"
    )
    assert assigned_names(src) == [
        "epoch",
        "x",
        "y",
        "loss",
        "best",
        "c",
        "p",
        "q",
        "acc",
        "t",
        "val_loss",
    ]


def test_assigned_names_other_top_level_blocks() -> None:
    src = (
        "if cond:\n    a = 1\nelse:\n    b = 2\n"
        "while cond:\n    c = 3\n"
        "try:\n    d = 4\nexcept E:\n    e = 5\nfinally:\n    f = 6\n"
    )
    assert assigned_names(src) == ["a", "b", "c", "d", "e", "f"]


def test_assigned_names_not_inside_def_or_class() -> None:
    src = (
        "def train():\n    acc = 1\n    return acc\n"
        "class Model:\n    loss = 2\n"
        "async def go():\n    score = 3\n"
        "for i in range(2):\n"
        "    def inner():\n        f1 = 1\n"
        "    class K:\n        auc = 2\n"
        "with ctx():\n"
        "    def g():\n        rmse = 1\n"
        "z = [err for err in range(3)]\n"
    )
    assert assigned_names(src) == ["i", "z"]


def test_assigned_names_syntax_error() -> None:
    assert assigned_names("acc = (") == []
    assert assigned_names("!ls\nacc = 1") == []


# -- looks_like_metric ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "acc",
        "val_acc",
        "accuracy",
        "train_accuracy",
        "train_loss",
        "loss",
        "val_loss",
        "f1",
        "f1_macro",
        "val_f1",
        "auc",
        "roc_auc",
        "rmse",
        "mae",
        "mse",
        "r2",
        "test_score",
        "precision",
        "recall",
        "error_rate",
        "train_err",
        "logloss",
        "perplexity",
    ],
)
def test_metric_like_names(name: str) -> None:
    assert looks_like_metric(name)
    assert looks_like_metric(name.upper())
    assert looks_like_metric(name.title())


@pytest.mark.parametrize(
    "name",
    [
        "model",
        "n_estimators",
        "max_depth",
        "lr",
        "learning_rate",
        "data",
        "X_train",
        "y_test",
        "epochs",
        "batch_size",
        "seed",
        "optimizer",
        "df",
        "clf",
        "i",
    ],
)
def test_non_metric_names(name: str) -> None:
    assert not looks_like_metric(name)


def test_custom_metric_patterns() -> None:
    assert looks_like_metric("throughput", ["throughput*"])
    assert looks_like_metric("THROUGHPUT_per_s", ("throughput*",))
    assert not looks_like_metric("acc", ["throughput*"])
    assert not looks_like_metric("acc", [])
    assert looks_like_metric("MyMetric", ["mymetric"])
    assert "acc" in METRIC_PATTERNS


# -- scalar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (-2, -2.0),
        (0.25, 0.25),
        (np.float32(0.5), 0.5),
        (np.float64(1.5), 1.5),
        (np.int64(7), 7.0),
        (np.int8(-1), -1.0),
        (np.array(2.5), 2.5),
        (np.array(4, dtype=np.int32), 4.0),
    ],
)
def test_scalar_numbers(value: object, expected: float) -> None:
    out = scalar(value)
    assert isinstance(out, float)
    assert out == expected


def test_scalar_nan_is_a_float() -> None:
    out = scalar(float("nan"))
    assert out is not None and out != out


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        np.bool_(True),
        np.array(True),
        "0.5",
        None,
        [0.5],
        (0.5,),
        {"acc": 0.5},
        np.array([0.5]),
        np.array([[1.0]]),
        np.zeros(3),
        1 + 2j,
        np.complex128(1),
        np.array("x"),
        object(),
    ],
)
def test_scalar_rejects(value: object) -> None:
    assert scalar(value) is None


def test_literal_params_skip_names_rebound_by_walrus_del_import_or_def() -> None:
    assert literal_params("lr = 0.1\nprint(lr := lr * 2)\n") == {}
    assert literal_params("x = 1\ndel x\n") == {}
    assert literal_params("np = 1\nimport numpy as np\n") == {}
    assert literal_params("f = 1\ndef f():\n    lr = 3\n") == {}
    assert literal_params("lr = 0.1\ndef g():\n    lr = 3\n") == {"lr": 0.1}
