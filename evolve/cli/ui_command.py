"""`evolve ui`: the read-only web app over the lineage database."""

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from evolve.database import DEFAULT_URL, DatabaseError


def ui(
    db: Annotated[str, typer.Option("--db", help="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")] = DEFAULT_URL,
    host: Annotated[str, typer.Option(help="address to listen on; anything but loopback exposes the database")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8765,
) -> None:
    """Watch a search in the browser: experiments, score over time, the lineage tree, each candidate's diff,
    verdicts, samples and LLM call. Read-only; safe to run beside a running search."""
    from evolve.ui.server import serve  # the web stack loads only for this command

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
