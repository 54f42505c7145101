"""Which code ran a search: the package version and, in a git checkout, the commit."""

import subprocess
from importlib import metadata
from pathlib import Path


def code_version() -> str:
    try:
        version = metadata.version("cifar-evolve")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return version
    if commit.returncode != 0:
        return version
    return f"{version}+{commit.stdout.strip()}{'-dirty' if dirty.stdout.strip() else ''}"
