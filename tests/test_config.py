from pathlib import Path

import pytest

from components import COMPONENT_NAMES
from evolve.config import ConfigError, ExperimentConfig
from evolve.config_loading import load_config, parse_assignments
from evolve.config_display import mask_secret, masked_dump, setting_rows

EXAMPLE = Path(__file__).parent.parent / "evolve.example.toml"
KEY = "sk-test-0123456789abcdef"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "evolve.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_source():
    loaded = load_config(environ={})
    assert loaded.config == ExperimentConfig()
    assert loaded.config.components == list(COMPONENT_NAMES)
    assert not loaded.config.llm.enabled and loaded.sources == {}


def test_example_file_loads_and_every_field_is_documented():
    loaded = load_config(EXAMPLE, environ={"OPENAI_API_KEY": KEY})
    config = loaded.config
    assert config.components == ["optimizer", "hyperparams"] and config.llm.enabled
    assert [m.name for m in config.llm.models] == ["gpt-4.1", "gpt-4.1-mini"]
    assert loaded.source_of("llm.models[1].weight") == str(EXAMPLE)
    assert loaded.source_of("llm.api_key") == "env OPENAI_API_KEY"
    rows = setting_rows(loaded)
    undocumented = [r.name for r in rows if not r.description]
    assert undocumented == []
    assert {r.name: r.value for r in rows}["llm.api_key"] == mask_secret(KEY)
    assert KEY not in str(masked_dump(config)) and KEY not in str([r.value for r in rows])


def test_precedence_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, "generations = 5\ncandidates_per_generation = 2\n[population]\nislands = 3\nmigration_size = 2\n")
    environ = {"EVOLVE_GENERATIONS": "7", "EVOLVE_POPULATION__ISLANDS": "6", "EVOLVE_CACHE": "/tmp/cache"}
    loaded = load_config(path, {"population.islands": 8}, environ)
    config = loaded.config
    assert (config.generations, config.candidates_per_generation) == (7, 2)
    assert (config.population.islands, config.population.migration_size) == (8, 2)
    assert loaded.source_of("generations") == "env EVOLVE_GENERATIONS"
    assert loaded.source_of("candidates_per_generation") == str(path)
    assert loaded.source_of("population.islands") == "flag"
    assert loaded.source_of("population.elites_per_island") == "default"


def test_text_values_are_typed_by_field():
    environ = {"EVOLVE_GPUS": "0,1", "EVOLVE_LLM__BASE_URL": "http://localhost:1/v1", "EVOLVE_BUDGET_USD": "2.5"}
    overrides = parse_assignments(["components=all", "llm.models=[{name = \"m\", weight = 2}]", "harness.hyperparams.epochs=7"])
    config = load_config(None, overrides, environ).config
    assert config.gpus == [0, 1] and config.budget_usd == 2.5 and config.llm.base_url == "http://localhost:1/v1"
    assert config.components == list(COMPONENT_NAMES) and config.llm.models[0].weight == 2.0
    assert config.harness.hyperparams == {"epochs": 7}
    # A numeric-looking string stays a string where the field is text; JSON lists work too.
    config = load_config(None, {"llm.api_key": "12345", "llm.models": '[{"name": "m"}]'}, {}).config
    assert config.llm.api_key.get_secret_value() == "12345" and config.llm.models[0].name == "m"


def test_openai_environment_is_only_a_fallback(tmp_path):
    path = write(tmp_path, '[llm]\nbase_url = "http://file/v1"\n')
    loaded = load_config(path, environ={"OPENAI_BASE_URL": "http://env/v1", "OPENAI_API_KEY": KEY})
    assert loaded.config.llm.base_url == "http://file/v1"
    assert loaded.config.llm.api_key.get_secret_value() == KEY


def test_invalid_value_names_field_and_source(tmp_path):
    path = write(tmp_path, '[llm]\nbase_url = "http://x/v1"\n[[llm.models]]\nname = "m"\nweight = -1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"llm.models[0].weight: input should be greater than 0 (got -1, from {path})"


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError, match=r"^generations: input should be greater than or equal to 1 \(got 0, from flag\)$"):
        load_config(None, {"generations": "0"}, {})
    with pytest.raises(ConfigError, match="unknown component 'optimiser'.*from env EVOLVE_COMPONENTS"):
        load_config(None, None, {"EVOLVE_COMPONENTS": "optimiser"})


def test_unknown_keys_are_refused_with_the_valid_ones(tmp_path):
    path = write(tmp_path, "[llm]\nmodle = 1\n[harness]\ndevise = 'cpu'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert message.startswith("2 problems")
    assert f"llm.modle: unknown setting (from {path}); valid settings at `llm`: base_url" in message
    assert "harness.devise: unknown setting" in message and "device" in message


def test_models_need_an_endpoint(tmp_path):
    path = write(tmp_path, '[[llm.models]]\nname = "m"\n')
    with pytest.raises(ConfigError, match=f"^llm: models are configured but there is no endpoint.*from {path}"):
        load_config(path, environ={})


def test_file_problems():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("/nonexistent/evolve.toml"), environ={})
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_assignments(["generations"])


def test_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "generations = \n"), environ={})


def test_mask_secret():
    assert mask_secret("sk-abcdefghijklmnopqrstuvwxyz") == "sk-...wxyz"
    assert mask_secret("short") == "*****"


def test_config_show_command(monkeypatch):
    import json

    from typer.testing import CliRunner

    from evolve.cli.app import app

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    result = runner.invoke(app, ["config", "show", "--config", str(EXAMPLE), "--set", "population.islands=2"])
    assert result.exit_code == 0, result.output
    assert "population.islands" in result.output and "flag" in result.output and "env OPENAI_API_KEY" in result.output
    assert "number of islands, each evolving its own sub-population" in result.output
    assert KEY not in result.output and mask_secret(KEY) in result.output
    result = runner.invoke(app, ["config", "show", "--json", "--config", str(EXAMPLE)])
    data = json.loads(result.output)
    assert data["llm"]["api_key"] == mask_secret(KEY) and data["population"]["islands"] == 4
    result = runner.invoke(app, ["config", "show", "--set", "population.islands=0"])
    assert result.exit_code == 2 and "population.islands: input should be greater than or equal to 1" in result.output
