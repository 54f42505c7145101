"""CPU-seconds per champion improvement, with and without merges and novelty/behaviour filtering.

A fixed search with the built-in mutator on the CPU (the real sandboxed cascade, the tiny scale,
synthetic data), run once with merges, the novelty check and the behaviour check (the defaults)
and once with all three off, same seed, one after the other. Reported per variant: the
device-side seconds the cascade and the paired re-measurements spent (on the CPU: CPU-seconds,
what a GPU search spends as GPU-seconds), the champion improvements (champion changes after the
first), their ratio, and what was skipped.

The configuration is chosen so that improvements are attainable at all on this scale (see
docs/BENCHMARKS.md, "Smarter search"), without touching the promotion rule:
- components hyperparams and architecture: both have sites that change a run's time on the tiny
  scale (epochs, tta_level, newton_schulz_steps, whiten_kernel_size; the conv kernel size), so
  wins in both exist and a merge can combine them. (newton_schulz's live sites are coefficients:
  they change accuracy, never time.)
- epochs stays a live site: the seed is the baseline with HYPERPARAMS["epochs"] set to
  --seed-epochs in its source (a harness override would make the key dead for the mutator).
- the accuracy target is reachable (the seed's accuracy is well above it), and the
  non-inferiority margin is sized to the tiny test set's accuracy noise (a few points per run;
  the default 0.2 points is sized for 10,000 CIFAR test images and would refuse every change).
- enough pairs: the loop lifts a promotion's pairs to what the attempt's alpha needs at least,
  but with only that many every pair must be won; --pairs gives slack.

    OMP_NUM_THREADS=1 python bench/smart_search.py --generations 20 --per-generation 2 --seed 7

Progress (the loop's events and a status line every --heartbeat seconds) goes to stderr, one JSON
line per variant to stdout.
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

VARIANTS = {
    "smart": {"merge_share": 0.25, "novelty_enabled": True, "behaviour_check": True},
    "plain": {"merge_share": 0.0, "novelty_enabled": False, "behaviour_check": False},
}
SEED_EPOCHS_LITERAL = '"epochs": 8.0'


def seed_sources(epochs: float) -> dict[str, str]:
    """The baseline with the seed's epochs written into its hyperparams source (so the key stays live)."""
    sources = dict(ComponentSet.shipped("baseline").sources)
    if SEED_EPOCHS_LITERAL not in sources["hyperparams"]:
        raise SystemExit(f"the baseline hyperparams no longer contain {SEED_EPOCHS_LITERAL!r}: update bench/smart_search.py")
    sources["hyperparams"] = sources["hyperparams"].replace(SEED_EPOCHS_LITERAL, f'"epochs": {float(epochs)!r}', 1)
    return sources


def bench_config(search: dict, args) -> ExperimentConfig:
    return ExperimentConfig(
        components=args.components.split(","), generations=args.generations, candidates_per_generation=args.per_generation,
        seed=args.seed, harness={"device": "cpu", "data": "synthetic"},
        cascade={"runs": args.runs, "min_runs": min(args.runs, 2)},
        promotion={"pairs": args.pairs, "accuracy_margin": args.accuracy_margin},
        score={"target": args.target}, population={"islands": 1}, llm={"concurrent_calls": 1}, search=search,
    )


def run(variant: str, args) -> dict:
    config = bench_config(VARIANTS[variant], args)
    dataset = synthetic_dataset(args.train, args.test, seed=11)
    console = Console(stderr=True, force_terminal=False)
    with tempfile.TemporaryDirectory() as folder, Store.open(f"sqlite:///{folder}/bench.db") as store:
        experiment = store.create_experiment(variant, config.components, masked_dump(config), "baseline", "cpu",
                                             seed_sources=seed_sources(args.seed_epochs))
        stats = LoopStats(experiment=variant, proposer="mutator", device_unit="CPU hours")
        rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        console.print(f"--- {variant}: {json.dumps(VARIANTS[variant])}", highlight=False, markup=False)
        with Progress(console, stats, heartbeat_seconds=args.heartbeat) as progress:
            loop = EvolutionLoop(config, store, experiment, LocalPoolExecutor(None, dataset),
                                 MutatorProposer(config.mutator, np.random.default_rng(args.seed)), progress, Budget(), rng)
            loop.run()
        wall = time.perf_counter() - started
        _, device_seconds = store.spending(experiment.id)
        candidates = store.candidates(experiment.id)
        by_id = {c.id: c for c in candidates}
        history = store.champion_history(experiment.id)
        improvements = max(0, len(history) - 1)
        champion = by_id.get(history[-1].candidate_id) if history else None
        return {
            "variant": variant, "proposals": loop.attempts, "evaluated": loop.stats.evaluated,
            "merges": sum(c.origin == "merge" for c in candidates),
            "merges_evaluated": sum(c.origin == "merge" and c.status in ("evaluated", "champion") for c in candidates),
            "near_copies": loop.stats.near_copies,
            "behaviour_skips": sum(c.verdict == "rejected at behaviour" for c in candidates),
            "improvements": improvements,
            "improved_by": [f"#{h.candidate_id} ({by_id[h.candidate_id].origin}): {by_id[h.candidate_id].description}"
                            for h in history[1:] if h.candidate_id in by_id],
            "champion_time": None if champion is None else champion.time_mean,
            "cpu_seconds": round(device_seconds, 1),
            "cpu_seconds_per_improvement": round(device_seconds / improvements, 1) if improvements else None,
            "wall_seconds": round(wall, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="smart,plain", help="comma-separated, run one after the other: smart, plain")
    parser.add_argument("--components", default="hyperparams,architecture")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--per-generation", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed-epochs", type=float, default=3.0, help="HYPERPARAMS['epochs'] of the seed")
    parser.add_argument("--runs", type=int, default=3, help="cascade timed runs per candidate (screening)")
    parser.add_argument("--pairs", type=int, default=10, help="paired runs per promotion (the loop lifts it to what alpha needs)")
    parser.add_argument("--target", type=float, default=0.15,
                        help="accuracy target: just below the seed's lower bound (16-24 %% here), so that the score refuses lineages that trade accuracy for time")
    parser.add_argument("--accuracy-margin", type=float, default=0.1, help="promotion.accuracy_margin (fraction)")
    parser.add_argument("--heartbeat", type=float, default=60.0, help="seconds between status lines on stderr")
    args = parser.parse_args()
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
    for variant in args.variants.split(","):
        print(json.dumps(run(variant, args)), flush=True)


if __name__ == "__main__":
    main()
