"""The evolvable parts of the speedrun, one module each, grouped into shipped component sets.

A component set is a folder of modules named after COMPONENT_NAMES. The harness reads them as
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


__all__ = ["COMPONENT_NAMES", "SHIPPED_SETS", "shipped_set_dir"]
