"""`evolve start --resume`: the stored settings, with each flag given again overriding one.

A resumed search continues with the settings it was started with (generations, budgets,
harness, ...), read from the database, not with this invocation's defaults. A flag given again
(`--generations 40`, `--budget-gpu-hours 2`, `--set population.islands=2`) overrides that one
stored setting, and the CLI says so. The LLM's key is never stored: it, the endpoint and the
models come from this invocation when it sets them (environment, file or flags), else the
endpoint and models are the stored ones.
"""

from typing import Any

from pydantic import ValidationError

from evolve.config import ConfigError, ExperimentConfig
from evolve.config_loading import LoadedConfig

NOT_OVERRIDES = {"database_url"}  # names where to find the experiment, not a setting of it
FIXED = {"seed_set": "the seed set is stored with the experiment; start a new experiment to search from another set"}


class ResumeError(ValueError):
    """A flag that cannot change on resume."""


def _get(data: dict, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _put(data: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def resumed_config(stored: dict[str, Any], loaded: LoadedConfig, flags: dict[str, Any]) -> tuple[ExperimentConfig, list[str]]:
    """The stored settings with the flags given again applied; returns them and one line per change."""
    current = loaded.config.model_dump(mode="json")
    merged = {key: value for key, value in stored.items()}
    llm = dict(merged.get("llm", {}))
    llm["api_key"] = loaded.config.llm.api_key.get_secret_value() if loaded.config.llm.api_key else None
    if loaded.config.llm.base_url is not None:
        llm["base_url"] = loaded.config.llm.base_url
    if loaded.config.llm.models:
        llm["models"] = current["llm"]["models"]
    merged["llm"] = llm
    changes = []
    for dotted in sorted(flags):
        keys = dotted.split(".")
        if dotted in NOT_OVERRIDES or keys[0] == "llm" and keys[-1] == "api_key":
            continue
        old, new = _get(stored, keys), _get(current, keys)
        if dotted in FIXED and old != new:
            raise ResumeError(f"{dotted} cannot change from {old!r} to {new!r}: {FIXED[dotted]}")
        _put(merged, keys, new)
        if old != new:
            changes.append(f"{dotted}: {old!r} -> {new!r}")
    try:
        return ExperimentConfig.model_validate(merged), changes
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in e.errors())
        raise ConfigError(f"the stored settings with this invocation's do not validate: {problems}") from None
