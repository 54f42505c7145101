"""`evolve config show`: the effective configuration, each value's source and meaning."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from evolve.cli.output import escape, fail

config_app = typer.Typer(help="Inspect the experiment configuration.", no_args_is_help=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", metavar="PATH", help="TOML configuration file (see evolve.example.toml)")]
SetConfigOption = Annotated[
    list[str], typer.Option("--set", metavar="KEY=VALUE", help="override a setting, dotted KEY=VALUE, e.g. population.islands=2 (repeatable)")
]


@config_app.command("show")
def show(
    config: ConfigOption = None,
    set_: SetConfigOption = [],
    preset: Annotated[Optional[str], typer.Option(metavar="NAME", help="start from a preset, e.g. quick")] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="print the configuration as JSON")] = False,
) -> None:
    """Print every setting: dotted name, effective value, where it came from, and what it means."""
    # imported here: the settings import the evaluator, and `evolve --help` starts without it
    from evolve.config import ConfigError
    from evolve.config_loading import load_config, parse_assignments
    from evolve.config_display import masked_dump, setting_rows

    try:
        loaded = load_config(config, parse_assignments(set_), preset=preset)
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
