"""Where the CLI writes: results on stdout, messages and errors on stderr, never markup from data.

Messages carry text from users, candidates and LLMs (paths, `pip install 'cifar-evolve[download]'`,
source lines); rich would read their square brackets as markup and drop them, so every such
text is escaped here before it is printed.
"""

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=False)
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear message on stderr, then exit (2: bad input; 1: the work itself failed)."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


__all__ = ["console", "errors", "escape", "fail"]
