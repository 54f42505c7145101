"""Does the search climb? Planted handicaps, several search seeds, random search beside it, an A/A run.

The seed is the baseline set (at "epochs": 3.0, as bench/smart_search.py) with handicaps planted:
changes that cost time on the CPU's tiny scale at about equal accuracy, each one the built-in
mutator can undo with one edit (checked before anything runs):

- hyperparams `tta_level` 0 -> 2: six test-time views instead of one (a choice site);
- hyperparams `whiten_kernel_size` 2 -> 3: a wider whitening layer (a choice site);
- architecture `nn.GELU()` -> `nn.Mish()` in every ConvGroup (the `activation` operator).

"Clean" is the seed with every handicap undone: the best the planted handicaps allow (a search may
go further: other sites change time too). Variants, each with the same budget of proposals:

- `search`: the shipped loop (rank-softmax parents, champions become parents), built-in mutator;
- `random`: the same loop, but every parent is the seed (`population.parent_selection=seed`), so
  nothing builds on a champion: what selection adds is the difference;
- `aa`: an A/A search through a loopback LLM whose every rewrite moves one hyperparameter float by
  a relative 1e-7 (other behaviour, same expected performance): any promotion is false.

Reported per search (one JSON line each on stdout, progress on stderr): proposals, evaluated,
rejections, comparisons, promotions with what each changed, handicaps removed from the champion,
the seed's / champion's / clean set's screening time, CPU-seconds (the cascade's and the pairs',
what a GPU search would spend as GPU-seconds) and CPU-seconds per promotion. Every A/A promotion is false;
elsewhere a promotion that removed no handicap is listed with its change and time ("other") for
the reader to judge (it may be a real win the handicaps did not plant, e.g. a faster pooling).

    OMP_NUM_THREADS=1 python bench/climb.py --variants search,random --search-seeds 1,2
    OMP_NUM_THREADS=1 python bench/climb.py --variants aa --search-seeds 1
"""

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.runs import run_speedruns
from evaluator.settings import HarnessSettings
from evolve.config import ExperimentConfig
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.llm.client import Budget, LLMClient
from evolve.search.executor import LocalPoolExecutor
from evolve.search.loop import EvolutionLoop
from evolve.search.mutator import mutate
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import LLMProposer, MutatorProposer
from tests.loopback_llm import LoopbackLLM, full_module, reply

# (component, clean text, planted text, label)
HANDICAPS = [
    ("hyperparams", '"tta_level": 0', '"tta_level": 2', "tta_level 0 -> 2"),
    ("hyperparams", '"whiten_kernel_size": 2', '"whiten_kernel_size": 3', "whiten_kernel_size 2 -> 3"),
    ("architecture", "self.activ = nn.GELU()", "self.activ = nn.Mish()", "ConvGroup activation GELU -> Mish"),
]
CLEAN_EDITS = [("hyperparams", '"epochs": 8.0', '"epochs": 3.0'), ("hyperparams", '"tta_level": 2', '"tta_level": 0')]
AA_KEYS = ("label_smoothing", "bias_lr", "head_lr", "muon_lr", "sgd_momentum", "muon_momentum")


def replaced(sources: dict[str, str], component: str, old: str, new: str) -> dict[str, str]:
    if old not in sources[component]:
        raise SystemExit(f"the {component} source no longer contains {old!r}: update bench/climb.py")
    return {**sources, component: sources[component].replace(old, new, 1)}


def clean_sources() -> dict[str, str]:
    sources = dict(ComponentSet.shipped("baseline").sources)
    for component, old, new in CLEAN_EDITS:
        sources = replaced(sources, component, old, new)
    return sources


def seed_sources() -> dict[str, str]:
    sources = clean_sources()
    for component, old, new, _ in HANDICAPS:
        sources = replaced(sources, component, old, new)
    return sources


def check_reachable(config: ExperimentConfig, tries: int = 400) -> None:
    """Each handicap is undone by one edit the built-in mutator makes of the seed (else the bench means nothing)."""
    seed, rng = seed_sources(), np.random.default_rng(0)
    for component, clean, planted, label in HANDICAPS:
        for _ in range(tries):
            child = mutate(component, seed[component], rng, config.mutator, {}).source
            if planted not in child and clean in child:
                break
        else:
            raise SystemExit(f"no mutation of the seed's {component} undid {label} in {tries} tries: the bench needs a reachable handicap")


def handicaps_left(sources: dict[str, str]) -> list[str]:
    return [label for component, _, planted, label in HANDICAPS if planted in sources[component]]


def bench_config(variant: str, search_seed: int, args, llm_url: str | None = None) -> ExperimentConfig:
    llm = {"concurrent_calls": 1}
    if variant == "aa":
        llm.update(base_url=llm_url, output_format="full", models=[{"name": "aa-loopback"}])
    components = ["hyperparams"] if variant == "aa" else args.components.split(",")
    return ExperimentConfig(
        components=components, generations=args.generations, candidates_per_generation=args.per_generation,
        seed=search_seed, harness={"device": "cpu", "data": "synthetic"},
        cascade={"runs": args.runs, "min_runs": min(args.runs, 2)},
        promotion={"pairs": args.pairs, "accuracy_margin": args.accuracy_margin},
        score={"target": args.target},
        population={"islands": 1, "parent_selection": "seed" if variant == "random" else "rank_softmax"},
        llm=llm,
        # The A/A's rewrites behave differently (so the behaviour check lets them through) but only by 1e-7.
        search={"merge_share": 0.0 if variant == "aa" else 0.25},
    )


class FloatNudge:
    """The A/A loopback model: reply with the parent module, one HYPERPARAMS float moved by a relative 1e-7."""

    def __init__(self):
        self.count = 0

    def __call__(self, body: dict):
        self.count += 1
        prompt = body["messages"][-1]["content"]
        parent = prompt.split("```python\n", 1)[1].split("\n```", 1)[0]
        key = AA_KEYS[self.count % len(AA_KEYS)]
        match = re.search(rf'"{key}": ([0-9.e-]+)', parent)
        value = float(match.group(1)) * (1 + 1e-7 * (1 + self.count // len(AA_KEYS)))
        child = parent[: match.start(1)] + repr(value) + parent[match.end(1):]
        return reply(full_module(child))


def run(variant: str, search_seed: int, args, clean_time: float) -> dict:
    dataset = synthetic_dataset(args.train, args.test, seed=11)
    console = Console(stderr=True, force_terminal=False)
    name = f"{variant}-{search_seed}"
    with tempfile.TemporaryDirectory() as folder, Store.open(f"sqlite:///{folder}/bench.db") as store, \
            LoopbackLLM(responder=FloatNudge()) as llm:
        config = bench_config(variant, search_seed, args, llm.url)
        experiment = store.create_experiment(name, config.components, masked_dump(config), "climb seed", "cpu",
                                             seed_sources=seed_sources())
        if variant == "aa":
            proposer = LLMProposer(LLMClient(config.llm, np.random.default_rng(search_seed)), config.score, "full", "cpu")
        else:
            proposer = MutatorProposer(config.mutator, np.random.default_rng(search_seed))
        stats = LoopStats(experiment=name, proposer=proposer.name, device_unit="CPU hours")
        started = time.perf_counter()
        console.print(f"--- {name}", highlight=False, markup=False)
        with Progress(console, stats, heartbeat_seconds=args.heartbeat) as progress:
            loop = EvolutionLoop(config, store, experiment, LocalPoolExecutor(None, dataset), proposer, progress, Budget(),
                                 np.random.default_rng(search_seed))
            reason = loop.run()
        wall = time.perf_counter() - started
        _, device_seconds = store.spending(experiment.id)
        candidates = {c.id: c for c in store.candidates(experiment.id)}
        history = store.champion_history(experiment.id)
        seed = next(c for c in candidates.values() if c.origin == "seed")
        promotions, left_before = [], handicaps_left(seed_sources())
        for entry in history[1:]:
            champion = candidates[entry.candidate_id]
            left = handicaps_left(store.component_set_sources(champion.id))
            removed = [h for h in left_before if h not in left]
            promotions.append({"id": champion.id, "parent": champion.parent_id, "change": champion.description,
                               "handicaps_removed": removed, "time": champion.time_mean})
            left_before = left
        champion = candidates[history[-1].candidate_id] if history else seed
        return {
            "variant": variant, "search_seed": search_seed, "stop": reason, "proposals": loop.attempts,
            "evaluated": loop.stats.evaluated, "rejections": dict(loop.stats.rejections),
            "promotions": len(promotions),
            # Known false: every A/A promotion. Elsewhere a promotion that removed no handicap is listed for reading.
            "false_promotions": len(promotions) if variant == "aa" else None,
            "other_promotions": sum(not p["handicaps_removed"] for p in promotions),
            "compounded": sum(1 for p in promotions if p["parent"] != seed.id),
            "handicaps_removed": len(HANDICAPS) - len(handicaps_left(store.component_set_sources(champion.id))),
            "handicaps": len(HANDICAPS), "promoted": promotions,
            "seed_time": seed.time_mean, "champion_time": champion.time_mean, "clean_time": clean_time,
            "cpu_seconds": round(device_seconds, 1),
            "cpu_seconds_per_promotion": round(device_seconds / len(promotions), 1) if promotions else None,
            "wall_seconds": round(wall, 1),
        }


def measure_clean(args) -> float:
    """The clean set's mean time in one sandboxed worker, as screening measures a candidate."""
    samples = run_speedruns(ComponentSet(sources=clean_sources()), synthetic_dataset(args.train, args.test, seed=11),
                            HarnessSettings(device="cpu", data="synthetic"), args.runs)
    return float(np.mean([s.time_seconds for s in samples]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="search,random,aa", help="comma-separated, run one after the other: search, random, aa")
    parser.add_argument("--search-seeds", default="1,2", help="comma-separated loop and mutator seeds, one search per seed and variant")
    parser.add_argument("--components", default="hyperparams,architecture")
    parser.add_argument("--generations", type=int, default=7)
    parser.add_argument("--per-generation", type=int, default=2)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="cascade timed runs per candidate (screening)")
    parser.add_argument("--pairs", type=int, default=8, help="paired runs per promotion (the loop lifts it to what alpha needs)")
    parser.add_argument("--target", type=float, default=0.12, help="accuracy target: below the seed's lower bound (14-20 %% here; the whitening handicap costs accuracy)")
    parser.add_argument("--accuracy-margin", type=float, default=0.1, help="promotion.accuracy_margin (fraction; the tiny test set's scale)")
    parser.add_argument("--heartbeat", type=float, default=60.0, help="seconds between status lines on stderr")
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        if variant not in ("search", "random", "aa"):
            parser.error(f"unknown variant {variant!r}: choose from search, random, aa")
    check_reachable(bench_config("search", 0, args))
    clean_time = measure_clean(args)
    print(json.dumps({"clean_time": clean_time, "handicaps": [h[3] for h in HANDICAPS]}), flush=True)
    for search_seed in [int(s) for s in args.search_seeds.split(",")]:
        for variant in variants:
            print(json.dumps(run(variant, search_seed, args, clean_time)), flush=True)


if __name__ == "__main__":
    main()
