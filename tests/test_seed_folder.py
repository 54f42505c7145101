"""`evolve start --components FOLDER`: a search from the user's own set, stored in full with the experiment.

The loop runs on the stub evaluator (tests/stub_search.py): what is checked is which sources the
experiment stores and starts from, and that a resume never reads the folder again.
"""

import shutil

import pytest
from typer.testing import CliRunner

import evolve.cli.start_command as start_command
from components import set_description
from evaluator.component_set import ComponentError, ComponentSet
from evolve.cli.app import app
from evolve.config import ExperimentConfig
from evolve.database import Store
from tests.stub_search import StubExecutor

BASELINE = ComponentSet.shipped("baseline").sources
WORSE = BASELINE["hyperparams"].replace('"whiten_kernel_size": 2', '"whiten_kernel_size": 3')


@pytest.fixture
def recipe(tmp_path):
    folder = tmp_path / "my-recipe"
    folder.mkdir()
    (folder / "hyperparams.py").write_text(WORSE)
    return folder


def test_a_folder_holding_some_modules_takes_the_rest_from_the_baseline(recipe):
    component_set = ComponentSet.named(str(recipe))
    assert component_set.sources["hyperparams"] == WORSE
    assert all(component_set.sources[n] == BASELINE[n] for n in BASELINE if n != "hyperparams")
    assert ComponentSet.named("record").sources == ComponentSet.shipped("record").sources
    assert set_description(str(recipe)) == f"the set in {recipe}" and set_description("baseline") == "the baseline set"


def test_a_bad_seed_folder_gets_one_message_naming_the_problem_and_the_fix(tmp_path):
    cases = {
        str(tmp_path / "nowhere"): "neither a shipped set nor an existing folder",
        str(tmp_path): "holds no component module: put in it one or more of",
    }
    (tmp_path / "file.py").write_text("x = 1\n")
    cases[str(tmp_path / "file.py")] = "is a file, not a folder"
    for spec, message in cases.items():
        with pytest.raises(ComponentError, match=message):
            ComponentSet.named(spec)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tta.py").write_text("def predict(model, inputs, hp):\n    return model(inputs\n")
    with pytest.raises(ComponentError) as e:
        ComponentSet.named(str(broken))
    assert f"{broken / 'tta.py'}, line 2" in str(e.value) and "remove it to use the baseline's" in str(e.value)


def test_the_config_makes_a_seed_folder_absolute(recipe, monkeypatch):
    monkeypatch.chdir(recipe.parent)
    assert ExperimentConfig(seed_set="my-recipe").seed_set == str(recipe)
    assert ExperimentConfig(seed_set="frontier").seed_set == "frontier"


def start(url: str, *args: str):
    return CliRunner().invoke(app, ["start", "--component", "hyperparams", "--device", "cpu", "--data", "synthetic",
                                    "--db", url, "--set", "candidates_per_generation=2", "--set", "population.islands=1",
                                    *args])


def test_a_search_starts_from_the_folder_stores_it_and_resumes_after_the_folder_is_gone(recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(start_command, "make_executor", lambda config, dataset: StubExecutor())
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    result = start(url, "--components", str(recipe), "--generations", "1", "--name", "mine")
    assert result.exit_code == 0, result.output
    assert f"from the set in {recipe}" in result.output
    with Store.open(url) as store:
        experiment = store.experiment("mine")
        assert store.seed_sources(experiment.id) == {**BASELINE, "hyperparams": WORSE}
        seed = next(c for c in store.candidates(experiment.id) if c.origin == "seed")
        assert seed.source == WORSE and seed.description == f"the set in {recipe}"
        before = len(store.candidates(experiment.id))
    shutil.rmtree(recipe)
    resumed = start(url, "--resume", "mine", "--generations", "2")
    assert resumed.exit_code == 0, resumed.output
    with Store.open(url) as store:
        experiment = store.experiment("mine")
        assert len(store.candidates(experiment.id)) > before
        assert store.seed_sources(experiment.id)["hyperparams"] == WORSE


def test_a_missing_seed_folder_stops_the_start_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(start_command, "make_executor", lambda config, dataset: StubExecutor())
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    result = start(url, "--components", str(tmp_path / "nowhere"), "--generations", "1", "--name", "none")
    assert result.exit_code != 0
    assert "--components:" in result.output and "neither a shipped set nor an existing folder" in result.output
    with Store.open(url) as store:
        assert store.find_experiment("none") is None
