"""Prompt templates, as editable text files; `--prompts DIR` points the loop at a user's copies."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent


def load_template(name: str, directory: Path | None = None) -> str:
    """The text of template `name` (without .txt) from `directory`, or the shipped one."""
    path = (directory or TEMPLATES_DIR) / f"{name}.txt"
    if not path.exists():
        raise FileNotFoundError(f"prompt template {path} does not exist: copy the shipped one from {TEMPLATES_DIR}")
    return path.read_text()
