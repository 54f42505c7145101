"""The evolvable parts of the speedrun, one module each, grouped into shipped component sets.

A component set is a folder of modules named after COMPONENT_NAMES (a folder of the user's own
may hold only some of them: the baseline set's fill in the rest, see ComponentSet.named). The harness reads them as
text (see evaluator.component_set), so shipped sets, candidates and exports share one path.
"""

from pathlib import Path

from components.interface import COMPONENT_NAMES

SETS_DIR = Path(__file__).parent

SHIPPED_SETS = ("baseline", "record", "frontier")


def shipped_set_dir(name: str) -> Path:
    """The folder of a shipped component set.

    'baseline': airbench94_muon; 'record': the Hive's record; 'frontier': the record with Fulcrum
    Research's resolution curriculum and global max pool.
    """
    if name not in SHIPPED_SETS:
        raise ValueError(f"unknown component set {name!r}: choose one of {', '.join(SHIPPED_SETS)}")
    return SETS_DIR / name


def set_description(spec: str) -> str:
    """A seed set in words: 'the baseline set' for a shipped name, 'the set in PATH' for a folder."""
    return f"the {spec} set" if spec in SHIPPED_SETS else f"the set in {spec}"


__all__ = ["COMPONENT_NAMES", "SHIPPED_SETS", "set_description", "shipped_set_dir"]
