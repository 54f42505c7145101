"""`evolve ui`: the read-only web app over the lineage database.
The options and their help are declared in evolve/cli/app.py."""

import typer
from rich.console import Console
from rich.markup import escape

from evolve.database import DatabaseError
from evolve.ui.server import serve


def ui(*, db: str, host: str, port: int) -> None:
    """Serve the web app on host:port until interrupted; read-only, safe beside a running search."""
    out, errors = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        serve(
            db, host, port,
            say=lambda text: out.print(escape(text), soft_wrap=True),
            warn=lambda text: errors.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True),
        )
    except DatabaseError as e:
        errors.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1)
    except OSError as e:  # the port is taken, or the address is not this machine's
        errors.print(f"[bold red]error:[/] cannot listen on {escape(host)}:{port}: {escape(str(e))}. Pass another --port or --host",
                     soft_wrap=True)
        raise typer.Exit(code=1)
