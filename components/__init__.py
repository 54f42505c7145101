"""The evolvable parts of the speedrun, one module each, grouped into shipped component sets.

A component set is a folder of modules named after COMPONENT_NAMES. A folder may hold only the
modules it changes and name its base set in SET_FILE (`base = "record"`): the set is then its
base's modules with its own in place, as the search stores a candidate over its parent. A shipped
set without SET_FILE holds all six; a folder of the user's own without one is over the baseline set
(see ComponentSet.named). Read a set through evaluator.component_set.ComponentSet (shipped, named,
from_folder), never its files: the harness takes the texts, so shipped sets, candidates and exports
share one path.
"""

from pathlib import Path

from components.interface import COMPONENT_NAMES

SETS_DIR = Path(__file__).parent

SHIPPED_SETS = ("baseline", "record", "frontier")
SET_FILE = "set.toml"  # a set folder's declaration of its base: one line, base = "NAME"


def shipped_set_dir(name: str) -> Path:
    """The folder of a shipped component set, which may hold only the modules it changes over its
    base (read the set with ComponentSet.shipped, not the folder's files).

    'baseline': airbench94_muon; 'record': the Hive's record; 'frontier': the record with Fulcrum
    Research's resolution curriculum and global max pool (over the record: set.toml).
    """
    if name not in SHIPPED_SETS:
        raise ValueError(f"unknown component set {name!r}: choose one of {', '.join(SHIPPED_SETS)}")
    return SETS_DIR / name


def set_description(spec: str) -> str:
    """A seed set in words: 'the baseline set' for a shipped name, 'the set in PATH' for a folder."""
    return f"the {spec} set" if spec in SHIPPED_SETS else f"the set in {spec}"


__all__ = ["COMPONENT_NAMES", "SET_FILE", "SHIPPED_SETS", "set_description", "shipped_set_dir"]
