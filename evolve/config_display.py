"""The configuration as `evolve config show` and the database show it: every leaf with its value,
source and description, and secrets masked."""

from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from evolve.config import ExperimentConfig, Path_
from evolve.config_loading import LoadedConfig, format_path


class SettingRow(BaseModel):
    """One leaf of the configuration, for `evolve config show`."""

    name: str
    value: Any
    source: str
    description: str


def mask_secret(secret: str) -> str:
    """Enough of a key to recognize it, never all of it."""
    if len(secret) <= 12:
        return "*" * len(secret)
    return f"{secret[:3]}...{secret[-4:]}"


def setting_rows(loaded: LoadedConfig) -> list[SettingRow]:
    """Every leaf of the effective configuration with its value, source and description."""
    rows: list[SettingRow] = []
    _rows(loaded.config, (), rows, loaded)
    return rows


def _rows(model: BaseModel, prefix: Path_, rows: list[SettingRow], loaded: LoadedConfig) -> None:
    for name, field in type(model).model_fields.items():
        keys = (*prefix, name)
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _rows(value, keys, rows, loaded)
            continue
        if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            for index, item in enumerate(value):
                _rows(item, (*keys, index), rows, loaded)
            continue
        if isinstance(value, SecretStr):
            value = mask_secret(value.get_secret_value())
        elif isinstance(value, Path):
            value = str(value)
        dotted = format_path(keys)
        rows.append(SettingRow(name=dotted, value=value, source=loaded.source_of(dotted), description=field.description or ""))


def masked_dump(config: ExperimentConfig) -> dict[str, Any]:
    """The configuration as JSON-ready data, the API key masked."""
    data = config.model_dump(mode="json")
    if config.llm.api_key is not None:
        data["llm"]["api_key"] = mask_secret(config.llm.api_key.get_secret_value())
    return data
