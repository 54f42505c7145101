"""Loading the configuration (config.py's settings tree) from its layers, with one clear error.

Split from config.py, which defines the settings: this half reads the layers (a preset, a TOML
file, the environment, flags), merges them and turns every problem into one ConfigError naming
the field by its dotted path and the layer its value came from (see config.py's docstring for
the layers and their order).
"""

import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from evolve.config import DEFAULT_LABEL, ENV_NESTING, ENV_PREFIX, MODEL_VARIABLE, ConfigError, ExperimentConfig, Path_
from evolve.presets import preset_values


class LoadedConfig(BaseModel):
    """The effective configuration and, for each setting given explicitly, the layer it came from."""

    config: ExperimentConfig
    sources: dict[str, str] = {}  # dotted path -> "evolve.toml", "env EVOLVE_GPUS", "flag", ...

    def source_of(self, dotted: str) -> str:
        """The layer that set `dotted` (or a containing table or list), else 'default'."""
        return _lookup_source(self.sources, dotted)


# ---------------------------------------------------------------------------------------------
# Loading.


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    preset: str | None = None,
) -> LoadedConfig:
    """Preset < file < environment < overrides (dotted keys from flags), validated; raises ConfigError."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if preset is not None:
        try:
            values = preset_values(preset)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        for dotted, value in values.items():
            _set(data, sources, tuple(dotted.split(".")), value, f"preset {preset}")
    if path is not None:
        label = str(path)
        for dotted_path, value in _leaves(_read_toml(path)):
            _set(data, sources, dotted_path, value, label)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX):].split(ENV_NESTING))
        if keys[0] not in ExperimentConfig.model_fields or not all(keys):
            continue  # not ours (EVOLVE_CACHE is the data cache, for example)
        _set(data, sources, keys, parse_value(keys, raw), f"env {name}")
    for dotted, value in (overrides or {}).items():
        keys = tuple(dotted.split("."))
        if isinstance(value, str):
            value = parse_value(keys, value)
        _set(data, sources, keys, value, "flag")
    llm = data.get("llm", {}) if isinstance(data.get("llm"), dict) else {}
    for field, variable in (("api_key", "OPENAI_API_KEY"), ("base_url", "OPENAI_BASE_URL")):
        if llm.get(field) is None and environ.get(variable):
            _set(data, sources, ("llm", field), environ[variable], f"env {variable}")
    if not llm.get("models") and environ.get(MODEL_VARIABLE, "").strip():
        _set(data, sources, ("llm", "models"), model_specs(environ[MODEL_VARIABLE]), f"env {MODEL_VARIABLE}")
    problems = _unknown_keys(ExperimentConfig, data, (), sources)
    if problems:
        raise ConfigError(_join(problems))
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_join([_describe_error(error, sources) for error in e.errors()])) from None
    return LoadedConfig(config=config, sources=sources)


def model_specs(names: str | list[str]) -> list[dict[str, Any]]:
    """`--model NAME` (repeatable) or EVOLVE_MODEL="a,b" as llm.models entries of weight 1."""
    parts = names.split(",") if isinstance(names, str) else [p for name in names for p in name.split(",")]
    return [{"name": part.strip()} for part in parts if part.strip()]


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (dotted keys, from `--set`) into overrides for load_config."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{pair!r} is not KEY=VALUE (example: --set population.islands=2)")
        overrides[key.strip()] = value.strip()
    return overrides


def parse_value(keys: Path_, raw: str) -> Any:
    """Text from the environment or a flag: kept as text for string fields, else a TOML literal."""
    if _is_text_field(keys):
        return raw
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(raw)  # JSON lists of objects, e.g. '[{"name": "gpt-4.1"}]'
    except json.JSONDecodeError:
        return raw


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist: copy evolve.example.toml and edit it")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def _leaves(table: dict[str, Any], prefix: Path_ = ()) -> list[tuple[Path_, Any]]:
    """(path, value) for every non-table value of a TOML document (lists stay whole)."""
    leaves = []
    for key, value in table.items():
        if isinstance(value, dict) and value:
            leaves += _leaves(value, (*prefix, key))
        else:
            leaves.append(((*prefix, key), value))
    return leaves


def _set(data: dict[str, Any], sources: dict[str, str], keys: Path_, value: Any, label: str) -> None:
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value
    dotted = format_path(keys)
    for existing in [s for s in sources if s == dotted or s.startswith((dotted + ".", dotted + "["))]:
        del sources[existing]
    sources[dotted] = label


def format_path(keys: Path_) -> str:
    """('llm', 'models', 0, 'weight') -> 'llm.models[0].weight'."""
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _lookup_source(sources: dict[str, str], dotted: str) -> str:
    candidate = dotted
    while candidate:
        if candidate in sources:
            return sources[candidate]
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
    inside = sorted({label for key, label in sources.items() if key.startswith((dotted + ".", dotted + "["))})
    return ", ".join(inside) if inside else DEFAULT_LABEL


# ---------------------------------------------------------------------------------------------
# The schema, walked by path.


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (None,)
        return _model_of(item)
    return None


def _annotation_at(keys: Path_) -> Any:
    model: type[BaseModel] | None = ExperimentConfig
    annotation: Any = None
    for key in keys:
        if model is None or not isinstance(key, str) or key not in model.model_fields:
            return None
        annotation = model.model_fields[key].annotation
        model = _model_of(annotation)
    return annotation


def _is_text_field(keys: Path_) -> bool:
    return _unwrap(_annotation_at(keys)) in (str, SecretStr, Path)


def _unknown_keys(model: type[BaseModel], data: Any, prefix: Path_, sources: dict[str, str]) -> list[str]:
    """Keys that name no field (pydantic would ignore some of them silently)."""
    if not isinstance(data, dict):
        return []
    problems = []
    for key, value in data.items():
        keys = (*prefix, key)
        if key not in model.model_fields:
            dotted = format_path(keys)
            valid = ", ".join(model.model_fields)
            where = f"`{format_path(prefix)}`" if prefix else "the top level"
            problems.append(
                f"{dotted}: unknown setting (from {_lookup_source(sources, dotted)}); valid settings at {where}: {valid}"
            )
            continue
        annotation = model.model_fields[key].annotation
        if (sub := _model_of(annotation)) is not None:
            problems += _unknown_keys(sub, value, keys, sources)
        elif (item := _list_item_model(annotation)) is not None and isinstance(value, list):
            for index, entry in enumerate(value):
                problems += _unknown_keys(item, entry, (*keys, index), sources)
    return problems


def _describe_error(error: dict[str, Any], sources: dict[str, str]) -> str:
    keys = tuple(k for k in error["loc"] if isinstance(k, (str, int)))
    dotted = format_path(keys) or "configuration"
    message = error["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    value = error.get("input")
    shown = "" if isinstance(value, dict) or "api_key" in dotted else f"got {value!r}, "
    return f"{dotted}: {message} ({shown}from {_lookup_source(sources, dotted)})"


def _join(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the configuration:\n" + "\n".join(f"  {p}" for p in problems)
