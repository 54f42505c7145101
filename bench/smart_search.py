"""CPU-seconds per champion improvement, with and without merges and novelty/behaviour filtering.

A fixed small search with the built-in mutator on the CPU (the real sandboxed cascade, the tiny
scale, synthetic data, one epoch): once with merges, the novelty check and the behaviour check
(the defaults), once with all three off. Reported per variant: the device-side seconds the cascade
and the paired re-measurements spent (on the CPU: CPU-seconds), the champion improvements (champion
changes after the first), their ratio, and what was skipped.

    python bench/smart_search.py --generations 3 --per-generation 2 --seed 7
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet  # noqa: E402
from evaluator.data import synthetic_dataset  # noqa: E402
from evolve.config import ExperimentConfig  # noqa: E402
from evolve.config_display import masked_dump  # noqa: E402
from evolve.database import Store  # noqa: E402
from evolve.llm.client import Budget  # noqa: E402
from evolve.search.executor import LocalPoolExecutor  # noqa: E402
from evolve.search.loop import EvolutionLoop  # noqa: E402
from evolve.search.progress import LoopStats, Progress  # noqa: E402
from evolve.search.proposer import MutatorProposer  # noqa: E402

SMART = {"merge_share": 0.25, "novelty_enabled": True, "behaviour_check": True}
PLAIN = {"merge_share": 0.0, "novelty_enabled": False, "behaviour_check": False}


def run(variant: str, search: dict, args) -> dict:
    config = ExperimentConfig(
        components=args.components.split(","), generations=args.generations, candidates_per_generation=args.per_generation,
        seed=args.seed, harness={"device": "cpu", "data": "synthetic", "hyperparams": {"epochs": 1}},
        cascade={"runs": 2, "min_runs": 2}, promotion={"pairs": 2}, score={"target": 0.1},
        population={"islands": 1}, llm={"concurrent_calls": 1}, search=search,
    )
    dataset = synthetic_dataset(args.train, args.test, seed=11)
    with tempfile.TemporaryDirectory() as folder, Store.open(f"sqlite:///{folder}/bench.db") as store:
        experiment = store.create_experiment(variant, config.components, masked_dump(config), "baseline", "cpu",
                                             seed_sources=ComponentSet.shipped("baseline").sources)
        stats = LoopStats(experiment=variant, proposer="mutator")
        rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        with Progress(Console(quiet=True), stats) as progress:
            loop = EvolutionLoop(config, store, experiment, LocalPoolExecutor(None, dataset),
                                 MutatorProposer(config.mutator, np.random.default_rng(args.seed)), progress, Budget(), rng)
            loop.run()
        wall = time.perf_counter() - started
        _, device_seconds = store.spending(experiment.id)
        candidates = store.candidates(experiment.id)
        improvements = max(0, len(store.champion_history(experiment.id)) - 1)
        return {
            "variant": variant, "proposals": loop.attempts, "evaluated": loop.stats.evaluated,
            "merges": sum(c.origin == "merge" for c in candidates),
            "merges_evaluated": sum(c.origin == "merge" and c.status in ("evaluated", "champion") for c in candidates),
            "near_copies": loop.stats.near_copies,
            "behaviour_skips": sum(c.verdict == "rejected at behaviour" for c in candidates),
            "improvements": improvements, "cpu_seconds": round(device_seconds, 1),
            "cpu_seconds_per_improvement": round(device_seconds / improvements, 1) if improvements else None,
            "wall_seconds": round(wall, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--components", default="hyperparams,newton_schulz")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--per-generation", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=100)
    args = parser.parse_args()
    for variant, search in (("smart", SMART), ("plain", PLAIN)):
        print(json.dumps(run(variant, search, args)), flush=True)


if __name__ == "__main__":
    main()
