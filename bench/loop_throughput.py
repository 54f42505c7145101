"""How long do the evaluation workers wait for the LLM? The loop's overlap, measured.

The real loop (evolve/search/loop.py), the real database (SQLite in a temporary folder) and the real
LLM proposer with the openai client talk to a loopback OpenAI-compatible server that answers
after a fixed latency; the executor is a stub that holds each slot for a fixed time, as a GPU
evaluation would. Reported: the fraction of the evaluation slots' time spent idle between the
first evaluation and the last, so that LLM latency hidden behind training shows up as ~0.

    python bench/loop_throughput.py --slots 2 --eval-seconds 1.0 --llm-seconds 0.5 --candidates 16
"""

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components import shipped_set_dir  # noqa: E402
from evaluator.results import Evaluation, RunSample, StageVerdict  # noqa: E402
from evaluator.statistics import summarize  # noqa: E402
from evolve.config import ExperimentConfig, LLMSettings, ModelSpec  # noqa: E402
from evolve.database import Store  # noqa: E402
from evolve.llm.client import Budget, LLMClient  # noqa: E402
from evolve.search.executor import EvaluationJob, Executor, JobProgress  # noqa: E402
from evolve.search.loop import EvolutionLoop  # noqa: E402
from evolve.search.progress import LoopStats, Progress  # noqa: E402
from evolve.search.proposer import LLMProposer  # noqa: E402
from tests.loopback_llm import LoopbackLLM, full_module, reply  # noqa: E402


class StubExecutor(Executor):
    """Holds a slot for `seconds` per job and records when each slot was busy."""

    def __init__(self, slots: int, seconds: float):
        self._slots, self.seconds = slots, seconds
        self.pool = ThreadPoolExecutor(max_workers=slots)
        self.busy: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, job: EvaluationJob) -> Future:
        return self.pool.submit(self._run, job)

    def job_progress(self) -> list[JobProgress]:
        return []  # the panel shows each job as waiting for a worker: this benchmark does not look at it

    def abandon(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)  # a job sleeping now ends within `seconds`

    def describe(self) -> str:
        return f"stub executor: {self.slots} slot(s) of {self.seconds:.2f} s each"

    def _run(self, job: EvaluationJob) -> Evaluation:
        start = time.perf_counter()
        time.sleep(self.seconds)
        samples = [RunSample(run=i, seed=i, accuracy=0.95, time_seconds=3.0 + 0.01 * i, device_name="stub", torch_version="-")
                   for i in range(3)]
        with self.lock:
            self.busy.append((start, time.perf_counter()))
        return Evaluation(changed=job.changed, status="evaluated", samples=samples, summary=summarize(samples),
                          stages=[StageVerdict(stage="timed", status="passed", seconds=self.seconds)])

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=not wait)

    def idle_fraction(self) -> float:
        first, last = min(s for s, _ in self.busy), max(e for _, e in self.busy)
        busy = sum(e - s for s, e in self.busy)
        return 1 - busy / (self.slots * (last - first))


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=2, help="evaluation workers (GPUs)")
    parser.add_argument("--eval-seconds", type=float, default=1.0, help="duration of one stub evaluation")
    parser.add_argument("--llm-seconds", type=float, default=0.5, help="latency of one LLM reply")
    parser.add_argument("--candidates", type=int, default=16, help="proposals in the experiment")
    args = parser.parse_args(argv)

    optimizer = (shipped_set_dir("baseline") / "optimizer.py").read_text()
    line = "        newton_schulz_steps: int = 3,"
    replies = [reply(full_module(optimizer.replace(line, line.replace("3", str(4 + k)))), delay=args.llm_seconds)
               for k in range(args.candidates)]
    executor = StubExecutor(args.slots, args.eval_seconds)
    with LoopbackLLM(*replies) as server, tempfile.TemporaryDirectory() as folder:
        config = ExperimentConfig(
            components=["optimizer"], generations=1, candidates_per_generation=args.candidates, seed=0,
            llm=LLMSettings(base_url=server.url, api_key="bench", models=[ModelSpec(name="loopback")]),
        )
        with Store.open(f"sqlite:///{folder}/bench.db") as store:
            experiment = store.create_experiment("bench", ["optimizer"], config, "baseline", "stub")
            proposer = LLMProposer(LLMClient(config.llm), config.score, "full", "stub GPU")
            console = Console(stderr=True, quiet=True)
            with Progress(console, LoopStats(experiment="bench", proposer=proposer.name)) as progress:
                loop = EvolutionLoop(config, store, experiment, executor, proposer, progress, Budget(), np.random.default_rng(0))
                started = time.perf_counter()
                loop.run()
                wall = time.perf_counter() - started
    executor.shutdown()
    idle = executor.idle_fraction()
    print(f"slots {args.slots}, evaluation {args.eval_seconds:.2f} s, LLM latency {args.llm_seconds:.2f} s, "
          f"{len(executor.busy)} evaluations in {wall:.1f} s: evaluation slots idle {idle:.1%} of the time")
    return idle


if __name__ == "__main__":
    main()
