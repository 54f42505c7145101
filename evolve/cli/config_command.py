"""`evolve config show`: the effective configuration, each value's source and meaning.
The options and their help are declared in evolve/cli/app.py."""

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evolve.cli.output import escape, fail
from evolve.config import ConfigError
from evolve.config_display import masked_dump, setting_rows
from evolve.config_loading import load_config, parse_assignments


def config_show(*, config: Path | None, set_: list[str] | None, preset: str | None, as_json: bool) -> None:
    """Print every setting: dotted name, effective value, where it came from, and what it means."""
    try:
        loaded = load_config(config, parse_assignments(set_ or []), preset=preset)
    except ConfigError as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(json.dumps(masked_dump(loaded.config), indent=2) + "\n")
        return
    table = Table(title="effective configuration")
    table.add_column("setting", no_wrap=True)
    for column in ("value", "source", "description"):
        table.add_column(column, overflow="fold")
    for row in setting_rows(loaded):
        value = "-" if row.value is None else json.dumps(row.value) if isinstance(row.value, (list, dict, str)) else str(row.value)
        table.add_row(*(escape(cell) for cell in (row.name, value, row.source, row.description)))
    Console().print(table)
