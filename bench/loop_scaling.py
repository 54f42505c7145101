"""Does the loop's own time per proposal stay flat as the lineage grows? Measured to 10,000 candidates.

The real loop (evolve/search/loop.py) and the real database, SQLite or PostgreSQL, drive a
search whose evaluator is the stub of tests/stub_search.py (results at once, no training) and
whose proposer changes one constant of the hyperparams module (every proposal a new program).
What remains is the loop's own work per proposal: choosing a parent and inspirations from the
in-memory index, rebuilding sets from the database, hashing identities, writing the proposal,
the candidate, its claim and its evaluation. Reported: milliseconds per proposal in each window
of `--window` proposals, of wall time and of the process's CPU time (the goal: under 5 ms, and
flat). On a shared machine the wall time mostly measures the other processes: read the CPU time.

    python bench/loop_scaling.py --candidates 10000
    python bench/loop_scaling.py --candidates 10000 --db postgresql+psycopg://postgres@127.0.0.1:5432/evolve_bench
"""

import argparse
import itertools
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evolve.config import ExperimentConfig
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.llm.client import Budget
from evolve.search.loop import EvolutionLoop
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import Proposal, ProposalRequest
from tests.stub_search import StubExecutor

CONSTANT = re.compile(r"^BENCH_COUNTER = \d+$", re.MULTILINE)


class CounterProposer:
    """A new program per proposal: one constant of the module set to a fresh number (microseconds)."""

    name = "counter"

    def __init__(self):
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def propose(self, request: ProposalRequest) -> Proposal:
        with self.lock:
            n = next(self.counter)
        source = request.parent.source
        line = f"BENCH_COUNTER = {n}"
        source = CONSTANT.sub(line, source) if CONSTANT.search(source) else source.rstrip() + f"\n\n{line}\n"
        return Proposal(request=request, source=source, origin="mutator", description=f"counter {n}")


class TimedStub(StubExecutor):
    """The stub evaluator, keeping the CPU time it spends itself (not the loop's)."""

    cpu = 0.0

    def submit(self, job):
        start = time.process_time()
        try:
            return super().submit(job)
        finally:
            TimedStub.cpu += time.process_time() - start


def timed_proposals(loop: EvolutionLoop, marks: list, window: int) -> None:
    """Note when each proposal's outcome is stored (wrapping the loop's Proposals.done)."""
    done = loop.proposals.done

    def timed_done(*args) -> None:
        done(*args)
        marks.append((time.perf_counter(), time.process_time() - TimedStub.cpu))
        if len(marks) % window == 0:  # as it goes: a long run on a busy machine shows its progress
            (w0, c0), (w1, c1) = marks[-window], marks[-1]
            print(f"  proposals {len(marks) - window + 1}-{len(marks)}: {1000 * (w1 - w0) / (window - 1):.2f} ms "
                  f"wall, {1000 * (c1 - c0) / (window - 1):.2f} ms CPU per proposal", flush=True)

    loop.proposals.done = timed_done


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000, help="proposals in the experiment")
    parser.add_argument("--window", type=int, default=1000, help="proposals per reported window")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/bench.db"
        config = ExperimentConfig(components=["hyperparams"], generations=args.candidates // 4, candidates_per_generation=4,
                                  seed=0, harness={"device": "cpu"}, llm={"concurrent_calls": 1})
        name = f"scaling-{uuid.uuid4().hex[:8]}"
        with Store.open(url) as store:
            experiment = store.create_experiment(name, config.components, masked_dump(config), "baseline", "stub",
                                                 seed_sources=ComponentSet.shipped("baseline").sources)
            with Progress(Console(stderr=True, quiet=True), LoopStats(experiment=name, proposer="counter")) as progress:
                loop = EvolutionLoop(config, store, experiment, TimedStub(), CounterProposer(), progress, Budget(),
                                     np.random.default_rng(0))
                marks: list = []
                timed_proposals(loop, marks, args.window)
                started = time.perf_counter()
                loop.run()
                wall = time.perf_counter() - started
            backend = store.db.backend
    windows = [[1000 * (marks[k + args.window - 1][i] - marks[k - 1 if k else 0][i]) / args.window for i in (0, 1)]
               for k in range(0, len(marks) - args.window + 1, args.window)]
    print(f"{backend}: {len(marks)} proposals in {wall:.1f} s; per proposal, by window of {args.window} "
          "(ms of wall time / ms of CPU time of the process, the stub evaluator's excluded):")
    print("  " + ", ".join(f"{w:.2f} / {c:.2f}" for w, c in windows))
    return [c for _, c in windows]


if __name__ == "__main__":
    main()
