"""HTML for the pages: Jinja2 templates with autoescaping always on, and Pygments highlighting.

Every string from the database (sources, diffs, LLM prompts and replies, error messages) reaches
the page either through an autoescaped template variable or through Pygments, which escapes what
it highlights; nothing is marked safe that did not come out of Pygments.
"""

import json
import math
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

TEMPLATES = Path(__file__).parent / "templates"
STYLE = "default"


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # infinities are stored as strings
        return value
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 10 ** -digits):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def usd(value: Any) -> str:
    """Dollars: cents, or four decimals for the fractions of a cent a cheap call costs."""
    if value is None:
        return "-"
    return f"${value:.2f}" if value == 0 or abs(value) >= 0.01 else f"${value:.4f}"


def points(value: Any) -> str:
    return "-" if value is None or isinstance(value, str) else f"{100 * value:.2f}%"


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@lru_cache(maxsize=1)
def formatter() -> HtmlFormatter:
    return HtmlFormatter(nowrap=True, style=STYLE)


def python_html(source: str) -> Markup:
    """Highlighted Python, escaped by Pygments."""
    return Markup(highlight(source, PythonLexer(), formatter()))


def diff_html(diff: str) -> Markup:
    """A unified diff, each line's code highlighted as Python and marked added, removed or context."""
    lexer, out = PythonLexer(stripnl=False, ensurenl=False), []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind, prefix, code = "file", "", line
        elif line.startswith("@@"):
            kind, prefix, code = "hunk", "", line
        elif line[:1] in ("+", "-", " "):
            kind = {"+": "add", "-": "del", " ": "ctx"}[line[0]]
            prefix, code = line[0], line[1:]
        else:
            kind, prefix, code = "ctx", "", line
        if kind in ("file", "hunk"):
            body = Markup.escape(code)
        else:
            body = Markup(highlight(code, lexer, formatter()).rstrip("\n"))
        out.append(Markup('<span class="line {}"><span class="sign">{}</span>{}</span>').format(kind, prefix, body))
    return Markup("").join(out)


def highlight_css() -> str:
    return formatter().get_style_defs(".code")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters.update(number=number, usd=usd, points=points, when=when, pretty_json=pretty_json, python=python_html, diff=diff_html)
    return env


def page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
