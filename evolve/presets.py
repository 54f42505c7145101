"""Named starting points for a configuration (`evolve start --preset quick`).

A preset is the lowest layer of the configuration: the file, the environment and flags all
override it, and `evolve config show --preset NAME` prints each of its values with the source
"preset NAME".
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # A first search on a laptop CPU in a few minutes: the built-in mutator tunes the hyperparameters
    # of the tiny network on synthetic data. Its numbers say nothing about CIFAR-10 on a GPU.
    "quick": {
        "components": ["hyperparams"],
        "generations": 2,
        "candidates_per_generation": 2,
        "harness.device": "cpu",
        "harness.data": "synthetic",
        "harness.scale": "tiny",
        # Three epochs instead of the recipe's eight: a tiny run takes ~6 s on one idle core, not ~17 s,
        # so the whole search fits in a few minutes (the mutator then leaves `epochs` alone).
        "harness.hyperparams": {"epochs": 3.0},
        "cascade.runs": 2,
        "cascade.min_runs": 2,
        "promotion.pairs": 6,  # the fewest the first attempt's alpha (0.025) needs; the loop adds pairs for later ones
        "population.islands": 1,
        "score.target": 0.5,
        # A busy laptop may take minutes per tiny run: the GPU-sized 120 s limit would fail the seed itself.
        "cascade.limits.run_seconds": 600,
        "promotion.limits.run_seconds": 600,
    },
}


def preset_values(name: str) -> dict[str, Any]:
    """The dotted settings of a preset; a ValueError naming the known ones otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
