"""Search dynamics at cluster scale, measured on simulated landscapes (evolve/simulation).

Each run is the real loop, database (SQLite) and promotion policy with the simulated executor and
proposer (no code runs; every time and accuracy is drawn around a hidden truth). Against the
truths the executor kept, it measures what a real search cannot see:

- regret: the champion's true score minus the landscape's best (its floor time at the baseline's
  accuracy; no set reaches it, so regret never reaches 0), at marks of device-seconds spent;
- true and false promotions: a champion change is false when the new champion's true score is not
  above the old one's (slower, or below the accuracy target where the old one was not);
- device-seconds per true improvement.

Policies (`--policies`), each over `--seeds` (landscape, noise and loop seeds alike):
- shipped: the defaults;
- no-gate: promotion.gate_pvalue = 1 (every candidate that scores above the champion is compared);
- strict-gate: gate_pvalue = 0.05;
- fixed-16 / fixed-8 / fixed-32: promotion.power = 0, so every comparison takes promotion.pairs (16, 8, 32;
  still raised to what the attempt's alpha needs): the policy before pairs were sized by power;
- power-0.5: pairs sized for a 50 % chance of confirming the screening's gain (the shipped: 80 %);
- one-look: the pairs sized by power but tested once after all of them, no futility stop (the shipped
  tests them as they come: evaluator/promotion_policy/sequential.py);
- one-island: population.islands = 1 (the shipped default is 4);
- greedy: hill-climbing without statistics: the best candidate is the parent, and any candidate whose
  screening score beats the champion's becomes champion (no paired comparison, no gate);
- random: random search with the same budget: every candidate a child of the seed set, and the best
  screening score is champion (no statistics).

    python bench/search_dynamics.py --candidates 10000 --seeds 3 --slots 1 --jobs 2 --out docs/search_dynamics.json
    python bench/search_dynamics.py --candidates 100000 --seeds 1 --slots 64 --policies shipped
    python bench/search_dynamics.py --candidates 3000 --slots 64 --paced 0.001 --policies shipped   # slots' idle share
    python bench/search_dynamics.py --null --candidates 2000 --seeds 40 --policies shipped fixed-16   # false champions
"""

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.statistics import accuracy_penalty
from evolve.config import ExperimentConfig
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.database import decisions as promotion_records
from evolve.llm.client import Budget
from evolve.search.executor import PromotionJob
from evolve.search.loop import EvolutionLoop
from evolve.search.progress import LoopStats, Progress
from evolve.simulation.executor import SimulatedExecutor
from evolve.simulation.landscape import Truth
from evolve.simulation.proposer import SimulatedProposer

POLICIES: dict[str, dict] = {
    "shipped": {},
    "no-gate": {"promotion": {"gate_pvalue": 1.0}},
    "strict-gate": {"promotion": {"gate_pvalue": 0.05}},
    "fixed-16": {"promotion": {"power": 0.0}},
    "fixed-8": {"promotion": {"pairs": 8, "power": 0.0}},
    "fixed-32": {"promotion": {"pairs": 32, "power": 0.0}},
    "power-0.5": {"promotion": {"power": 0.5}},
    "one-look": {"promotion": {"looks": 1, "futility": 0.0}},  # pairs sized by power, tested once after all of them
    "one-island": {"population": {"islands": 1}},
    "greedy": {"promotion": {"gate_pvalue": 1.0}, "population": {"parent_selection": "best"}},
    "random": {"promotion": {"gate_pvalue": 1.0}, "population": {"parent_selection": "seed", "islands": 1}},
}
UNSTATISTICAL = {"greedy", "random"}  # the champion is the best screening score: no paired comparison
MARKS = [1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7]  # device-seconds at which regret is read


class UnstatisticalPolicy(PromotionPolicy):
    """The baselines without statistics: a candidate that passes the gate (its screening score above the
    champion's) is promoted on the 2 pairs the loop needs to record, whatever they show."""

    def pairs_for_candidate(self, context, candidate_times, champion):
        return 2, "no statistics: 2 pairs, for the record"

    def decide(self, candidate, incumbent, context, plan_=None, stopped=None):
        decision = super().decide(candidate, incumbent, context, plan_, stopped)
        return decision.model_copy(update={"promoted": True, "reason": "no statistics: its screening score is above the champion's"})


class UnstatisticalExecutor(SimulatedExecutor):
    """Its pairs cost no device time: the baselines without statistics spend it on screening alone."""

    def run(self, job):
        result = super().run(job)
        if isinstance(job, PromotionJob):
            result.seconds = 0.0
        return result


def true_score(truth: Truth, target: float, penalty_base: float) -> float:
    return -truth.time_seconds - accuracy_penalty(truth.accuracy, target, penalty_base)


def make_config(policy: str, seed: int, slots: int, candidates: int, pace: float, null: bool = False) -> ExperimentConfig:
    overrides = POLICIES[policy]
    per_generation = 8
    return ExperimentConfig(
        components=["hyperparams", "optimizer", "architecture"], executor="simulated", seed=seed,
        generations=math.ceil(candidates / per_generation), candidates_per_generation=per_generation,
        llm={"concurrent_calls": 2}, search={"behaviour_check": False},
        simulation={"slots": slots, "landscape_seed": seed, "noise_seed": seed, "wall_seconds_per_device_second": pace,
                    "landscape": {"null": null}},
        **{section: values for section, values in overrides.items()},
    )


def run_one(policy: str, seed: int, slots: int, candidates: int, pace: float = 0.0, null: bool = False) -> dict:
    """One simulated search; what it found, measured against the hidden truths."""
    config = make_config(policy, seed, slots, candidates, pace, null)
    executor = (UnstatisticalExecutor if policy in UNSTATISTICAL else SimulatedExecutor)(config.simulation)
    landscape, score = executor.landscape, config.score
    best = true_score(Truth(config.simulation.landscape.floor_time_seconds, config.simulation.landscape.baseline_accuracy),
                      score.target, score.penalty_base)
    history: list[dict] = []
    with tempfile.TemporaryDirectory() as folder, Store.open(f"sqlite:///{folder}/sim.db") as store:
        name = f"{policy}-{seed}-{uuid.uuid4().hex[:6]}"
        experiment = store.create_experiment(name, config.components, masked_dump(config), "baseline", "simulated",
                                             seed_sources=ComponentSet.shipped("baseline").sources)
        with Progress(Console(stderr=True, quiet=True), LoopStats(experiment=name, proposer="simulated")) as progress:
            loop = EvolutionLoop(config, store, experiment, executor, SimulatedProposer(config.simulation, np.random.default_rng(seed)),
                                 progress, Budget(), np.random.default_rng(seed))
            if policy in UNSTATISTICAL:
                loop.promotions.policy = UnstatisticalPolicy(config.promotion, config.score)
            crown = loop.state.crown

            def noted_crown(candidate_id: int) -> None:  # every champion change, with the device-seconds spent so far
                before = loop.state.champion.id if loop.state.champion else None
                crown(candidate_id)
                if candidate_id != before:
                    truth = landscape.truth(loop.state.component_set(candidate_id))
                    history.append({"device_seconds": executor.clock.device_seconds, "candidate": candidate_id,
                                    "true_score": true_score(truth, score.target, score.penalty_base),
                                    "true_time": truth.time_seconds, "true_accuracy": truth.accuracy})

            loop.state.crown = noted_crown
            marks: list[tuple[int, float]] = [(0, time.process_time())]
            done, finished = loop.proposals.done, itertools.count(1)

            def timed_done(*args) -> None:  # the loop's CPU time per proposal, by window of 1000 (flat to 100,000?)
                done(*args)
                if (n := next(finished)) % 1000 == 0:
                    marks.append((n, time.process_time()))
                    if n % 10_000 == 0:  # a long run shows its flatness as it goes (the table comes at its end)
                        (n0, c0), (_, c1) = marks[-2], marks[-1]
                        print(f"simulation: {policy} seed {seed} slots {slots}: {n} proposals, "
                              f"{1000 * (c1 - c0) / (n - n0):.1f} ms loop CPU a proposal over the last {n - n0}, "
                              f"{len(loop.promotions.queue)} comparison(s) queued", file=sys.stderr, flush=True)

            loop.proposals.done = timed_done
            started, cpu = time.perf_counter(), time.process_time()
            loop.run()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        comparisons = len(promotion_records.decisions(store, experiment.id))  # paired comparisons made (skipped ones record none)
    executor.shutdown()
    changes = list(itertools.pairwise(history))
    true = sum(b["true_score"] > a["true_score"] for a, b in changes)
    windows = [1000 * (c1 - c0) / (n1 - n0) for (n0, c0), (n1, c1) in itertools.pairwise(marks)]
    return {
        "policy": policy + (" (A/A)" if null else ""), "seed": seed, "slots": slots, "candidates": candidates, "pace": pace,
        "device_seconds": executor.clock.device_seconds, "simulated_wall_seconds": executor.clock.now,
        "comparisons": 0 if policy in UNSTATISTICAL else comparisons,
        "true_promotions": true, "false_promotions": len(changes) - true,
        "final_regret": best - history[-1]["true_score"] if history else None,
        "regret_at": {str(m): regret_at(history, best, m, executor.clock.device_seconds) for m in MARKS},
        "history": history, "wall_seconds": wall, "cpu_seconds": cpu, "cpu_ms_per_proposal_by_1000": windows,
        "slot_idle_share": executor.clock.idle_share() if pace else None,
        "steady_slot_idle_share": executor.clock.steady_idle_share() if pace else None,
        "refill_ms": refill_ms(executor.clock.refill_seconds()) if pace else None,
    }


def refill_ms(seconds: list[float]) -> dict | None:
    """The loop's reaction time per slot: a result's hand-back to the next job on that slot."""
    if not seconds:
        return None
    ms = np.array(seconds) * 1000
    return {"median": float(np.median(ms)), "p95": float(np.percentile(ms, 95)), "max": float(ms.max()), "n": len(ms)}


def idle_words(result: dict) -> str:
    steady, refill = result["steady_slot_idle_share"], result["refill_ms"]
    return (f", slot idle {result['slot_idle_share']:.1%} over the run, "
            + (f"{steady:.1%} in the steady state" if steady is not None else "no steady state (the slots never all filled)")
            + (f", refill median {refill['median']:.1f} ms / p95 {refill['p95']:.1f} ms / max {refill['max']:.0f} ms" if refill else ""))


def regret_at(history: list[dict], best: float, device_seconds: float, spent: float) -> float | None:
    """Regret of the champion in place when `device_seconds` had been spent (None: the run spent less)."""
    reached = [h for h in history if h["device_seconds"] <= device_seconds]
    return best - reached[-1]["true_score"] if reached and device_seconds <= spent else None


def interval(values: list[float]) -> str:
    """Mean and a 95 % t interval over seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.3g}"
    half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return f"{mean:.3g} ± {half:.2g}"


def report(results: list[dict]) -> Table:
    table = Table(title="simulated search dynamics (mean ± 95 % t interval over seeds)")
    for column in ["policy", "slots", "candidates", "seeds", "device-s (M)", "comparisons", "true promotions",
                   "false promotions", "runs with a false champion", "device-s per true improvement (k)", "final regret (s)",
                   "regret at 1e5 device-s", "regret at 3e5 device-s", "regret at 1e6 device-s"]:
        table.add_column(column)
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["policy"], r["slots"], r["candidates"]), []).append(r)
    for (policy, slots, candidates), runs in groups.items():
        table.add_row(
            policy, str(slots), f"{candidates:,}", str(len(runs)),
            interval([r["device_seconds"] / 1e6 for r in runs]), interval([r["comparisons"] for r in runs]),
            interval([r["true_promotions"] for r in runs]), interval([r["false_promotions"] for r in runs]),
            f"{sum(r['false_promotions'] > 0 for r in runs)}/{len(runs)}",
            interval([r["device_seconds"] / 1e3 / r["true_promotions"] if r["true_promotions"] else None for r in runs]),
            interval([r["final_regret"] for r in runs]),
            *(interval([r["regret_at"][mark] for r in runs]) for mark in ("100000.0", "300000.0", "1000000.0")),
        )
    return table


def markdown(table: Table) -> str:
    """The table as Markdown, for docs/BENCHMARKS.md."""
    header = [str(c.header) for c in table.columns]
    rows = zip(*[list(c.cells) for c in table.columns])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000, help="proposals per search")
    parser.add_argument("--seeds", type=int, default=3, help="searches per policy (seeds 0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--slots", type=int, nargs="+", default=[1], help="simulated parallel slots")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--paced", type=float, default=0.0, help="wall seconds per simulated device second (0: virtual time)")
    parser.add_argument("--null", action="store_true", help="A/A landscape: every set has the baseline's truth, so every "
                        "champion change is a false promotion (the false-champion rate)")
    parser.add_argument("--jobs", type=int, default=1, help="searches run at once (processes)")
    parser.add_argument("--out", type=Path, default=None, help="also write every result (with histories) as JSON here")
    parser.add_argument("--report", type=Path, nargs="+", default=None, help="run nothing: the table of these --out files")
    args = parser.parse_args(argv)
    if args.report:
        results = [r for path in args.report for r in json.loads(path.read_text())]
        Console(width=400).print(report(results))
        print(markdown(report(results)))
        return results
    grid = [(p, s, n, args.candidates, args.paced, args.null) for n in args.slots for p in args.policies
            for s in range(args.first_seed, args.first_seed + args.seeds)]
    console = Console(width=400)
    results = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for result in pool.map(run_one, *zip(*grid)):
            console.print(f"{result['policy']} seed {result['seed']} slots {result['slots']}: {result['comparisons']} comparisons, "
                          f"{result['true_promotions']} true / {result['false_promotions']} false promotions, final regret "
                          f"{result['final_regret']:.3f} s, {result['device_seconds'] / 1e6:.2f} M device-s, {result['wall_seconds']:.0f} s "
                          f"wall, CPU ms/proposal {[round(w, 1) for w in result['cpu_ms_per_proposal_by_1000']]}"
                          + (idle_words(result) if result["slot_idle_share"] is not None else ""))
            results.append(result)
    console.print(report(results))
    print(markdown(report(results)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
