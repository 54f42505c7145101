"""Finding processes from the test's side of the jail (this process sees every namespace's)."""

import os
from pathlib import Path


def processes_with(marker: str) -> list[int]:
    """This machine's processes whose command line holds the marker."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found
