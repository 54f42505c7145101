"""Values as every backend stores them: JSON-safe data and unified diffs."""

import difflib
import math
from typing import Any

from pydantic_core import to_jsonable_python


def json_safe(value: Any) -> Any:
    """JSON that every backend accepts: pydantic models, paths and dates as JSON values, and
    infinities and NaN (e.g. the lower bound of a single run) as strings."""
    value = to_jsonable_python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def unified_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=before_name, tofile=after_name
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
