"""Export a run as a notebook that reproduces it; diff two runs. Real kernels via nbclient."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import nbtrack
from nbtrack.cli import cli
from nbtrack.snapshot.environment import local_packages
from nbtrack.snapshot.export import param_source

TRAIN = """%%track --experiment exp --name {name}
lr = {lr}
epochs = 5
layers = [8, 4]
w = 0.0
for i in range(epochs):
    w += lr
acc = round(w, 6)"""


def _run_notebook(nb: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return nb


def _track(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lr: float, name: str
) -> str:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack"),
            new_code_cell("data = list(range(3))"),
            new_code_cell(TRAIN.format(lr=lr, name=name)),
        ]
    )
    _run_notebook(nb, tmp_path)
    runs = nbtrack.search_runs(experiment_names=["exp"], filter_string=f"run_name = '{name}'")
    assert len(runs) == 1
    return str(runs.run_id[0])


def _parameters_at(nb: nbformat.NotebookNode) -> int:
    """The index of the export's parameters cell (just before the run's own cell)."""
    (at,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    return at


@pytest.fixture
def base_run(store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return _track(store_dir, tmp_path, monkeypatch, 0.1, "base")


def test_param_source_reads_back_literals() -> None:
    assert param_source("n", "200") == "n = 200"
    assert param_source("lr", "0.1") == "lr = 0.1"
    assert param_source("layers", "[8, 4]") == "layers = [8, 4]"
    assert param_source("opt", "adam") == "opt = 'adam'"
    assert param_source("flag", "True") == "flag = True"
    assert param_source("x", "None") == "x = None"
    assert param_source("s", "it's") == 's = "it\'s"'


def test_export_is_valid_and_reproduces_the_run(
    base_run: str, store_dir: Path, tmp_path: Path
) -> None:
    out = nbtrack.export_snapshot(base_run, tmp_path / "export" / "run.ipynb")
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown"
    assert base_run in nb.cells[0].source and "exp" in nb.cells[0].source
    # the cells that ran, the parameters cell just before the run's own
    sources = [c.source for c in nb.cells[1:]]
    assert sources[0] == "%load_ext nbtrack"
    assert sources[1] == "data = list(range(3))"
    params_cell = nb.cells[3]
    assert params_cell.metadata["tags"] == ["parameters"]
    # w = 0.0 is accumulated by the cell (w += lr): state, not a param
    assert params_cell.source.splitlines() == ["epochs = 5", "layers = [8, 4]", "lr = 0.1"]
    assert sources[3].splitlines()[:5] == [
        "%%track --experiment exp --name base --params lr,epochs,layers",
        "# lr = 0.1  # set in the parameters cell",
        "# epochs = 5  # set in the parameters cell",
        "# layers = [8, 4]  # set in the parameters cell",
        "w = 0.0",
    ]
    requirements = (out.parent / "requirements.txt").read_text().splitlines()
    assert requirements[0] == f"# pinned by nbtrack from the environment of run {base_run}"
    assert any(line.startswith("pandas==") for line in requirements)
    assert all("==" in line for line in requirements[1:] if not line.startswith("#"))
    # a checkout installed editable (as the README installs nbtrack) is named, not pinned
    local = dict(local_packages())
    assert any(line.startswith("nbtrack==") for line in requirements) is ("nbtrack" not in local)

    _run_notebook(nb, out.parent)
    runs = nbtrack.search_runs(experiment_names=["exp"], filter_string="run_name = 'base'")
    assert len(runs) == 2
    first, again = (nbtrack.get_run(r) for r in runs.run_id)
    assert first.data.params == again.data.params
    assert first.data.metrics == again.data.metrics == {"acc": 0.5}


def test_export_bad_input(base_run: str, tmp_path: Path) -> None:
    with pytest.raises(nbtrack.exceptions.InvalidInputError, match="history, notebook"):
        nbtrack.export_snapshot(base_run, tmp_path / "x.ipynb", kind="source")
    with pytest.raises(nbtrack.exceptions.InvalidInputError, match=r"\.ipynb"):
        nbtrack.export_snapshot(base_run, tmp_path / "x.txt")
    with pytest.raises(nbtrack.exceptions.NotFoundError, match="no notebook snapshot"):
        nbtrack.export_snapshot(base_run, tmp_path / "x.ipynb", kind="notebook")
    assert not (tmp_path / "x.ipynb").exists()


def test_a_run_without_snapshots_says_so(store_dir: Path, tmp_path: Path) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    with pytest.raises(nbtrack.exceptions.NotFoundError, match="has: none"):
        nbtrack.export_snapshot(run_id, tmp_path / "x.ipynb")


def test_diff_of_two_runs(
    base_run: str, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _track(store_dir, tmp_path, monkeypatch, 0.2, "faster")
    d = nbtrack.diff_runs(base_run, other)
    assert d.params_changed == {"lr": ("0.1", "0.2")}
    assert not d.params_added and not d.params_removed
    x, y, delta = d.metrics["acc"]
    assert (x, y) == (0.5, 1.0) and delta == pytest.approx(0.5)
    assert len(d.cells_changed) == 1
    assert "-%%track --experiment exp --name base" in d.cells_changed[0]
    assert "-lr = 0.1" in d.cells_changed[0] and "+lr = 0.2" in d.cells_changed[0]
    assert not d.cells_added and not d.cells_removed
    assert d.packages == {}
    text = str(d)
    assert "lr: 0.1 -> 0.2" in text and "acc: 0.5 -> 1  (+0.5)" in text
    html = d._repr_html_()
    assert "+lr = 0.2" in html and "<pre" in html


def test_cli_export_and_diff(
    base_run: str, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _track(store_dir, tmp_path, monkeypatch, 0.3, "other")
    runner = CliRunner()
    out = tmp_path / "cli" / "r.ipynb"
    res = runner.invoke(cli, ["--store", str(store_dir), "export", base_run[:8], "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and (out.parent / "requirements.txt").exists()
    res = runner.invoke(cli, ["--store", str(store_dir), "diff", base_run[:8], other[:8]])
    assert res.exit_code == 0, res.output
    assert "lr: 0.1 -> 0.3" in res.output
    res = runner.invoke(
        cli, ["--store", str(store_dir), "export", base_run, "-o", str(out), "--kind", "notebook"]
    )
    assert res.exit_code != 0 and "no notebook snapshot" in res.output


def test_cli_export_to_a_path_it_cannot_write_says_so(
    base_run: str, store_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    targets = [blocker / "r.ipynb"] + ([Path("/proc/x.ipynb")] if Path("/proc").is_dir() else [])
    for out in targets:
        res = runner.invoke(cli, ["--store", str(store_dir), "export", base_run, "-o", str(out)])
        assert res.exit_code == 1 and not isinstance(res.exception, OSError)
        assert res.output.startswith(f"Error: cannot write {out}: "), res.output
        assert "Traceback" not in res.output and ".part" not in res.output
    assert blocker.read_text() == ""


def test_export_runs_past_cells_that_raised(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    failing = new_code_cell("raise ValueError('a typo the user fixed later')")
    failing.metadata["tags"] = ["raises-exception"]
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack"),
            failing,
            new_code_cell(TRAIN.format(lr=0.1, name="after-error")),
        ]
    )
    _run_notebook(nb, tmp_path)
    (run_id,) = nbtrack.search_runs(experiment_names=["exp"]).run_id
    out = nbtrack.export_snapshot(run_id, tmp_path / "e" / "run.ipynb")
    exported = nbformat.read(out, as_version=4)
    tags = [c.metadata.get("tags", []) for c in exported.cells[1:]]
    assert tags == [[], ["raises-exception"], ["parameters"], []]
    _run_notebook(exported, out.parent)  # goes past the failing cell
    assert len(nbtrack.search_runs(experiment_names=["exp"])) == 2


def test_export_never_overwrites_a_projects_own_requirements(base_run: str, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    own = folder / "requirements.txt"
    own.write_text("numpy>=1.26\n")
    out = nbtrack.export_snapshot(base_run, folder / "baseline.ipynb")
    assert own.read_text() == "numpy>=1.26\n"
    pinned = folder / "baseline.requirements.txt"
    assert pinned.read_text().startswith("# pinned by nbtrack")
    text = nbformat.read(out, as_version=4).cells[0].source
    assert "`pip install -r baseline.requirements.txt`" in text
    assert "pinned in baseline.requirements.txt" in text
    nbtrack.export_snapshot(base_run, folder / "baseline.ipynb")  # again: same files
    assert own.read_text() == "numpy>=1.26\n" and out.exists()


def test_requirements_leave_out_local_installs_and_flag_local_versions(
    store_dir: Path, tmp_path: Path
) -> None:
    import json

    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    env = {
        "python": "3.11.7",
        "packages": {
            "nbtrack": "0.1.0", "my-lib": "0.3.dev0", "numpy": "2.1.0", "pip": "25.0",
            "setuptools": "80.0.0", "torch": "2.13.0+cpu",
        },
        "local_packages": {"nbtrack": "file:///work/nbtrack", "my-lib": "file:///src/my-lib"},
    }
    client.store.put_snapshot(run_id, "environment", json.dumps(env).encode())
    client.store.put_snapshot(run_id, "script", b"x = 1\n")
    out = nbtrack.export_snapshot(run_id, tmp_path / "e.ipynb")
    assert (tmp_path / "requirements.txt").read_text().splitlines() == [
        f"# pinned by nbtrack from the environment of run {run_id}",
        "# not pinned, installed from local paths (install them from their source): "
        "my-lib, nbtrack",
        "numpy==2.1.0",
        "# torch 2.13.0+cpu: a local version (+cpu), from another index than PyPI "
        "(give pip that index: --extra-index-url URL)",
        "torch==2.13.0+cpu",
    ]
    text = nbformat.read(out, as_version=4).cells[0].source
    assert "| packages | 2 pinned in requirements.txt; not pinned, installed from local " \
        "paths: my-lib, nbtrack |" in text
    # a snapshot from before local installs were recorded pins everything but pip's tools
    del env["local_packages"]
    other = client.create_run("0").info.run_id
    client.store.put_snapshot(other, "environment", json.dumps(env).encode())
    client.store.put_snapshot(other, "script", b"x = 1\n")
    nbtrack.export_snapshot(other, tmp_path / "old" / "e.ipynb")
    pinned = (tmp_path / "old" / "requirements.txt").read_text().splitlines()
    assert [line for line in pinned if not line.startswith("#")] == [
        "my-lib==0.3.dev0", "nbtrack==0.1.0", "numpy==2.1.0", "torch==2.13.0+cpu",
    ]


def test_overriding_the_parameters_cell_changes_the_rerun(
    base_run: str, store_dir: Path, tmp_path: Path
) -> None:
    out = nbtrack.export_snapshot(base_run, tmp_path / "p" / "run.ipynb")
    nb = nbformat.read(out, as_version=4)
    at = _parameters_at(nb)
    nb.cells[at].source = nb.cells[at].source.replace("lr = 0.1", "lr = 0.3")  # as papermill does
    _run_notebook(nb, out.parent)
    runs = nbtrack.search_runs(experiment_names=["exp"], filter_string="params.lr = '0.3'")
    assert len(runs) == 1 and runs["metrics.acc"][0] == 1.5


def test_parameters_cell_with_keys_that_are_not_identifiers() -> None:
    from nbtrack.snapshot.export import parameters_cell

    cell = parameters_cell({"lr": "0.1", "model/depth": "3", "batch size": "32", "class": "a"})
    namespace: dict[str, object] = {}
    exec(cell, namespace)
    assert namespace["lr"] == 0.1
    assert namespace["params"] == {"batch size": 32, "class": "a", "model/depth": 3}


def test_defer_to_parameters_merges_an_existing_params_option() -> None:
    from nbtrack.snapshot.export import defer_to_parameters

    cell = "%%track --params extra -q\nlr = 0.1\nextra = lr * 2"
    out = defer_to_parameters(cell, {"lr": "0.1", "extra": "0.2"})
    assert out.splitlines() == [
        "%%track --params extra,lr -q",
        "# lr = 0.1  # set in the parameters cell",
        "extra = lr * 2",
    ]
    # a shell escape in the cell: read as IPython runs it
    assert defer_to_parameters("%%track\n!ls\nlr = 1", {"lr": "1"}) == (
        "%%track --params lr\n!ls\n# lr = 1  # set in the parameters cell"
    )
    assert defer_to_parameters("%%track\nlr = (1", {"lr": "1"}) == "%%track\nlr = (1"
    # a name listed is matched whole: lr_decay is not lr
    out = defer_to_parameters("%%track --params lr_decay\nlr = 0.1", {"lr": "0.1"})
    assert out.splitlines()[0] == "%%track --params lr_decay,lr"


SCRIPT = """import argparse, os, nbtrack

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
lr = 0.05
with nbtrack.start_run(run_name=os.path.basename(__file__)):
    nbtrack.log_params({"lr": lr, "epochs": args.epochs})
    nbtrack.log_metric("acc", lr * args.epochs)
"""


def test_a_script_s_run_exports_as_a_notebook_that_reproduces_it(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {"NBTRACK_TRACKING_URI": str(store_dir)}
    done = subprocess.run([sys.executable, str(script), "--epochs", "3"], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = str(nbtrack.search_runs().run_id[0])
    result = CliRunner().invoke(
        cli, ["--store", str(store_dir), "export", run_id[:8], "-o", str(tmp_path / "e.ipynb")],
        env=env,
    )
    assert result.exit_code == 0, result.output  # the script, as no cells ran
    nb = nbformat.read(tmp_path / "e.ipynb", as_version=4)
    assert nb.metadata["nbtrack"]["kind"] == "script"
    assert "# lr = 0.05  # set in the parameters cell" in nb.cells[-1].source
    nb.cells[1].source = nb.cells[1].source.replace("lr = 0.05", "lr = 0.5")  # an override
    # The arguments are not recorded (they may hold secrets): the user puts them back.
    assert "sys.argv = [" in nb.cells[2].source and "--epochs" not in nb.cells[2].source
    nb.cells[2].source = nb.cells[2].source.replace(".py']", ".py', '--epochs', '3']")
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    _run_notebook(nb, tmp_path)
    rerun = nbtrack.search_runs(order_by=["attributes.start_time DESC"]).iloc[0]
    # the command line given back (argparse reads it), its __file__, the overridden literal
    assert rerun["params.lr"] == "0.5" and rerun["params.epochs"] == "3"
    assert rerun["metrics.acc"] == pytest.approx(1.5) and rerun["run_name"] == "train.py"


def test_diff_with_a_run_lacking_an_environment_says_so(base_run: str) -> None:
    bare = nbtrack.Client().create_run("0", run_name="bare").info.run_id
    text = str(nbtrack.diff_runs(base_run, bare))
    assert "code:\n  not compared" in text and "packages:\n  not compared" in text
    assert "no environment snapshot for bare: packages not compared" in text
    assert text.count("-> -") == 1  # the metric bare lacks, not ~200 packages


def _last_run_named(name: str) -> dict[str, str]:
    runs = nbtrack.search_runs(
        filter_string=f"run_name = '{name}'",
        order_by=["attributes.start_time DESC"],
        search_all_experiments=True,
    )
    return nbtrack.get_run(str(runs.run_id[0])).data.params


def test_an_override_holds_over_earlier_cells_that_assign_the_param(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("import nbtrack"),
            new_code_cell("lr = 0.1\nepochs = 3"),
            new_code_cell(
                "with nbtrack.start_run(run_name='plain', live=False) as r:\n"
                "    nbtrack.log_params({'lr': lr, 'epochs': epochs})"
            ),
        ]
    )
    _run_notebook(nb, tmp_path)
    (run_id,) = nbtrack.search_runs().run_id
    out = nbtrack.export_snapshot(run_id, tmp_path / "e" / "run.ipynb")
    exported = nbformat.read(out, as_version=4)
    # the earlier cell runs as it ran; the parameters cell, after it, sets the values again
    assert exported.cells[2].source == "lr = 0.1\nepochs = 3"
    assert _parameters_at(exported) == 3
    assert exported.cells[3].source.splitlines() == ["epochs = 3", "lr = 0.1"]
    exported.cells[3].source = exported.cells[3].source.replace("lr = 0.1", "lr = 0.5")
    _run_notebook(exported, out.parent)
    assert _last_run_named("plain") == {"lr": "0.5", "epochs": "3"}


TWO_RUNS = "%%track --experiment exp --name {name}\nlr = {lr}\nacc = {acc}"


def test_an_override_holds_over_an_earlier_tracked_cell(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack"),
            new_code_cell(TWO_RUNS.format(name="first", lr=0.1, acc=0.9)),
            new_code_cell(TWO_RUNS.format(name="second", lr=0.2, acc=0.95)),
        ]
    )
    _run_notebook(nb, tmp_path)
    second = nbtrack.search_runs(experiment_names=["exp"], filter_string="run_name = 'second'")
    out = nbtrack.export_snapshot(str(second.run_id[0]), tmp_path / "e" / "second.ipynb")
    exported = nbformat.read(out, as_version=4)
    assert exported.cells[2].source.splitlines() == [
        "%%track --replay --experiment exp --name first",
        "lr = 0.1",
        "acc = 0.9",
    ]
    # as papermill does: a cell tagged injected-parameters after the parameters cell
    injected = new_code_cell("lr = 0.5", metadata={"tags": ["injected-parameters"]})
    exported.cells.insert(_parameters_at(exported) + 1, injected)
    _run_notebook(exported, out.parent)
    assert _last_run_named("second") == {"lr": "0.5"}
    # without an override, the export reproduces the run's own params
    _run_notebook(nbformat.read(out, as_version=4), out.parent)
    assert _last_run_named("second") == {"lr": "0.2"}
    # re-running made runs named "second" only: the earlier tracked cell was replayed
    names = nbtrack.search_runs(search_all_experiments=True).run_name
    assert sorted(names) == ["first", "second", "second", "second"]


def test_defer_cells_leaves_values_computed_from_the_param() -> None:
    from nbtrack.snapshot.export import defer_cells

    params = {"lr": "0.2", "base": "1", "epochs": "3"}
    # the cells before the run's own run as they ran; lr is computed in the run's cell
    cells = ["lr = 0.1\nepochs = 3", "%%writefile x.py\nbase = 1", "base = 1\nlr = base * 2"]
    deferred, literals = defer_cells(cells, params)
    assert deferred == [
        "lr = 0.1\nepochs = 3",
        "%%writefile x.py\nbase = 1",  # not Python run by the kernel: left as it is
        "# base = 1  # set in the parameters cell\nlr = base * 2",
    ]
    # epochs: the run's cell does not bind it, and its last literal above is the logged value
    assert literals == {"base": "1", "epochs": "3"}
    # the last literal of lr above is not its logged value: lr was computed after it
    assert defer_cells(["lr = 0.1", "lr = lr * 2", "print(lr)"], params)[1] == {}


def test_defer_cells_reads_cells_with_ipython_syntax() -> None:
    from nbtrack.snapshot.export import defer_cells

    params = {"lr": "0.1", "epochs": "3"}
    assert defer_cells(["%matplotlib inline\nlr = 0.1\n!ls"], params) == (
        ["%matplotlib inline\n# lr = 0.1  # set in the parameters cell\n!ls"],
        {"lr": "0.1"},
    )
    assert defer_cells(["%%time\nx = !ls\nepochs = 3"], params) == (
        ["%%time\nx = !ls\n# epochs = 3  # set in the parameters cell"],
        {"epochs": "3"},
    )
    # leading blank lines before the IPython syntax, as IPython reads them
    assert defer_cells(["\n!ls\nlr = 0.1"], params)[0] == [
        "\n!ls\n# lr = 0.1  # set in the parameters cell"
    ]


def test_a_notebook_export_defers_in_the_cell_that_made_the_run(
    store_dir: Path, tmp_path: Path
) -> None:
    client = nbtrack.Client()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.2")
    saved = new_notebook(cells=[new_code_cell("lr = 0.1"), new_code_cell("lr = 0.2\nprint(lr)")])
    client.store.put_snapshot(run_id, "notebook", nbformat.writes(saved).encode())
    out = nbtrack.export_snapshot(run_id, tmp_path / "n.ipynb", kind="notebook")
    exported = nbformat.read(out, as_version=4)
    assert [c.source for c in exported.cells[1:]] == [
        "lr = 0.1",  # an earlier cell: as it ran
        "lr = 0.2",  # the parameters cell
        "# lr = 0.2  # set in the parameters cell\nprint(lr)",
    ]
    assert _parameters_at(exported) == 2


def _rerun_in_a_fresh_store(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[nbtrack.entities.Run]:
    """Execute an export in a kernel logging to a new store; the runs it made there."""
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(tmp_path / "fresh"))
    _run_notebook(nbformat.read(exported, as_version=4), exported.parent)
    return nbtrack.Client(str(tmp_path / "fresh")).search_runs(
        [e.experiment_id for e in nbtrack.Client(str(tmp_path / "fresh")).search_experiments()]
    )


SEEDED = """%%track --experiment exp --name seeded
seed = 42
random.seed(seed)
acc = sum(data) + random.random()"""


def test_cells_before_the_run_s_own_replay_as_they_ran(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    earlier = "seed = 0\nrandom.seed(seed)\ndata = [random.random() for _ in range(3)]"
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack\nimport random"),
            new_code_cell(earlier),
            new_code_cell(SEEDED),
        ]
    )
    _run_notebook(nb, tmp_path)
    (run,) = nbtrack.Client().search_runs(["0", "1"])
    out = nbtrack.export_snapshot(run.info.run_id, tmp_path / "e" / "seeded.ipynb")
    exported = nbformat.read(out, as_version=4)
    # the data is made with seed 0 as it was; only the run's own seed = 42 is deferred
    assert exported.cells[2].source == earlier
    assert exported.cells[3].source == "seed = 42"
    assert exported.cells[4].source.splitlines()[:2] == [
        "%%track --experiment exp --name seeded --params seed",
        "# seed = 42  # set in the parameters cell",
    ]
    (again,) = _rerun_in_a_fresh_store(out, tmp_path, monkeypatch)
    assert again.data.params == run.data.params == {"seed": "42"}
    assert again.data.metrics == run.data.metrics


def test_an_earlier_tracked_cell_after_blank_lines_is_not_tracked_again(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack"),
            # IPython skips the blank lines (and indentation) before a cell magic
            new_code_cell("\n  \n" + TWO_RUNS.format(name="first", lr=0.1, acc=0.9)),
            new_code_cell(TWO_RUNS.format(name="second", lr=0.2, acc=0.95)),
        ]
    )
    _run_notebook(nb, tmp_path)
    second = nbtrack.search_runs(experiment_names=["exp"], filter_string="run_name = 'second'")
    out = nbtrack.export_snapshot(str(second.run_id[0]), tmp_path / "e" / "second.ipynb")
    assert nbformat.read(out, as_version=4).cells[2].source.splitlines()[2:] == [
        "%%track --replay --experiment exp --name first",
        "lr = 0.1",
        "acc = 0.9",
    ]
    (again,) = _rerun_in_a_fresh_store(out, tmp_path, monkeypatch)
    assert again.info.run_name == "second" and again.data.params == {"lr": "0.2"}


LOGGING = """%%track --experiment exp --name baseline
lr = 0.1
for step in range(3):
    nbtrack.log_metric("loss", lr / (step + 1), step=step)
acc = 0.5"""


def test_re_running_an_export_makes_one_run_though_earlier_tracked_cells_log(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as in the quickstart: an earlier tracked cell logs its loss curve itself
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext nbtrack\nimport nbtrack"),
            new_code_cell(LOGGING),
            new_code_cell(TWO_RUNS.format(name="second", lr=0.2, acc="acc + lr")),
        ]
    )
    _run_notebook(nb, tmp_path)
    second = nbtrack.search_runs(experiment_names=["exp"], filter_string="run_name = 'second'")
    out = nbtrack.export_snapshot(str(second.run_id[0]), tmp_path / "e" / "second.ipynb")
    exported = nbformat.read(out, as_version=4)
    assert exported.cells[2].source.startswith("%%track --replay --experiment exp --name baseline")
    assert "run with `--replay`" in exported.cells[0].source
    # the earlier cell's log_metric calls started no run: the export makes its own run only
    (again,) = _rerun_in_a_fresh_store(out, tmp_path, monkeypatch)
    assert again.info.run_name == "second"
    assert again.data.params == {"lr": "0.2"}
    assert again.data.metrics == {"acc": pytest.approx(0.7)}


TYPED = """%%track --experiment exp --name typed
version = '2'; flag = "True"
empty = "None"
seed = 7; offset = len(version + flag + empty) + 1
acc = seed + offset"""


def test_the_parameters_cell_keeps_the_code_s_literals(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(cells=[new_code_cell("%load_ext nbtrack"), new_code_cell(TYPED)])
    _run_notebook(nb, tmp_path)
    (run,) = nbtrack.search_runs(experiment_names=["exp"], output_format="list")
    assert run.data.params == {"version": "2", "flag": "True", "empty": "None", "seed": "7"}
    out = nbtrack.export_snapshot(run.info.run_id, tmp_path / "e" / "typed.ipynb")
    exported = nbformat.read(out, as_version=4)
    # strings stay strings (not 2, True, None), as the code wrote them
    assert exported.cells[2].source.splitlines() == [
        'empty = "None"', 'flag = "True"', "seed = 7", "version = '2'",
    ]
    # of a line with two statements, only the assignment deferred goes
    assert exported.cells[3].source.splitlines()[1:4] == [
        "# version = '2'; flag = \"True\"  # set in the parameters cell",
        '# empty = "None"  # set in the parameters cell',
        "offset = len(version + flag + empty) + 1  # seed = 7  # set in the parameters cell",
    ]
    (again,) = _rerun_in_a_fresh_store(out, tmp_path, monkeypatch)
    assert again.data.params == run.data.params
    assert again.data.metrics == run.data.metrics == {"acc": 17.0}


def test_defer_takes_statements_out_by_their_positions() -> None:
    from nbtrack.snapshot.export import defer_to_parameters

    params = {"a": "1", "b": "2", "layers": "[8, 4]", "s": "é"}
    assert defer_to_parameters("x = 0; a = 1; y = 2", params) == (
        "x = 0; y = 2  # a = 1  # set in the parameters cell"
    )
    assert defer_to_parameters("s = 'é'; a = 1  # both", params) == (
        "# s = 'é'; a = 1  # both  # set in the parameters cell"
    )
    assert defer_to_parameters("t = 'é'; a = 1;", params) == (
        "t = 'é';  # a = 1  # set in the parameters cell"
    )
    # a statement on several lines goes whole when alone on them, else stays as it ran
    assert defer_to_parameters("layers = [\n    8,\n    4]", params) == (
        "# layers = [  # set in the parameters cell\n#     8,\n#     4]"
    )
    assert defer_to_parameters("layers = [\n    8,\n    4]; b = 2", params) == (
        "layers = [\n    8,\n    4]  # b = 2  # set in the parameters cell"
    )
    assert defer_to_parameters("x = 1; layers = [\n    8,\n    4]", params) == (
        "x = 1; layers = [\n    8,\n    4]"
    )
    # read before its literal: the value it had then mattered, so it stays
    assert defer_to_parameters("print(a)\na = 1", params) == "print(a)\na = 1"
    # assigned twice, the first unread: both go
    assert defer_to_parameters("a = 0\na = 1", params) == (
        "# a = 0  # set in the parameters cell\n# a = 1  # set in the parameters cell"
    )


def test_parameters_cell_takes_the_literals_of_the_code() -> None:
    from nbtrack.snapshot.export import parameters_cell

    params = {"version": "2", "lr": "0.001", "flag": "True", "n": "3"}
    literals = {"version": "'2'", "lr": "1e-3", "flag": '"True"', "layers": "(\n[8,\n 4])"}
    cell = parameters_cell(params, literals=literals)
    assert cell.splitlines() == ['flag = "True"', "lr = 1e-3", "n = 3", "version = '2'"]


def test_exports_of_two_runs_in_one_folder_keep_their_own_requirements(
    base_run: str, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _track(store_dir, tmp_path, monkeypatch, 0.2, "other")
    folder = tmp_path / "out"
    runner = CliRunner()
    for run_id, name in ((base_run, "a"), (other, "b"), (base_run, "a")):  # a again: same files
        res = runner.invoke(
            cli, ["--store", str(store_dir), "export", run_id, "-o", str(folder / f"{name}.ipynb")]
        )
        assert res.exit_code == 0, res.output
    assert res.output.strip().endswith(str(folder / "requirements.txt"))
    header = "# pinned by nbtrack from the environment of run"
    assert (folder / "requirements.txt").read_text().splitlines()[0] == f"{header} {base_run}"
    assert (folder / "b.requirements.txt").read_text().splitlines()[0] == f"{header} {other}"
    assert not (folder / "a.requirements.txt").exists()
    # each notebook names the file written for it
    for name, requirements in (("a", "requirements.txt"), ("b", "b.requirements.txt")):
        text = nbformat.read(folder / f"{name}.ipynb", as_version=4).cells[0].source
        assert f" pinned in {requirements}" in text
        assert f"`pip install -r {requirements}`" in text


def test_a_history_export_s_parameters_cell_sets_only_what_its_cells_assign(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_TRACKING_URI", str(store_dir))
    nb = new_notebook(
        cells=[
            new_code_cell("import nbtrack\nlr = 0.1"),
            new_code_cell(
                "with nbtrack.start_run(run_name='mixed', live=False):\n"
                "    nbtrack.log_params({'lr': lr, 'opt': 'adam'})"
            ),
        ]
    )
    _run_notebook(nb, tmp_path)
    (run_id,) = nbtrack.search_runs().run_id
    out = nbtrack.export_snapshot(run_id, tmp_path / "e" / "mixed.ipynb")
    exported = nbformat.read(out, as_version=4)
    assert exported.cells[_parameters_at(exported)].source.splitlines() == [
        "lr = 0.1",
        "# Logged too, but not assigned as literals by the code (overriding them has no effect):",
        "#   opt = 'adam'",
    ]


def test_a_script_s_parameters_cell_sets_only_what_the_script_assigns(
    store_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "fit.py"
    script.write_text(
        "import nbtrack\n"
        "lr = 0.1\n"
        "with nbtrack.start_run():\n"
        "    nbtrack.log_params({'lr': lr, 'opt': 'adam', 'model/depth': 3})\n"
        "    nbtrack.log_params({'n_estimators': 200})\n"
    )
    env = {**os.environ, "NBTRACK_TRACKING_URI": str(store_dir)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = str(nbtrack.search_runs().run_id[0])
    out = nbtrack.export_snapshot(run_id, tmp_path / "fit.ipynb")
    assert nbformat.read(out, as_version=4).cells[1].source.splitlines() == [
        "lr = 0.1",
        "# Logged too, but not assigned as literals by the code (overriding them has no effect):",
        "#   'model/depth': 3",
        "#   n_estimators = 200",
        "#   opt = 'adam'",
    ]
