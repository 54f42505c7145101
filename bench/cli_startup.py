"""Start-up time of `evolve --help` and the inspection commands, and which heavy modules they load.

    python bench/cli_startup.py [--repeat 5] [--db sqlite:///evolve.db]

Each command runs in a fresh interpreter, once untimed and then `repeat` times; the median
wall-clock and CPU seconds are printed with the heavy modules (torch, scipy, openai) each one
imported. CPU time is less inflated than wall time on a busy machine. The untimed run writes the
bytecode caches a user's second command finds (PYTHONDONTWRITEBYTECODE is dropped from the
environment: where it is set, as on our CI machines, every start recompiles the package, about
0.1-0.2 s more). Results: docs/BENCHMARKS.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's modules, also where another copy is installed

from evaluator.component_set import ComponentSet
from evaluator.results import Evaluation, RunSample, StageVerdict
from evaluator.statistics import summarize
from evolve.database import NewCandidate, Store

HEAVY = ("torch", "scipy", "openai", "numpy", "alembic", "sqlalchemy")

# Runs one command in-process through typer's test runner (it exits like the real CLI) and reports
# the modules it loaded; the timing is of the whole interpreter, imports included.
PROBE = f"""
import json, sys
from typer.testing import CliRunner
from evolve.cli.app import app
result = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({{"exit": result.exit_code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def sample_database(url: str) -> None:
    """A tiny experiment (seed and one child) so that the inspection commands have work to do."""
    samples = [RunSample(run=i, seed=i, accuracy=0.94 + i / 1000, time_seconds=3.0 + i / 100, device_name="bench",
                         torch_version="-") for i in range(3)]
    evaluation = Evaluation(changed=["hyperparams"], status="evaluated", samples=samples, summary=summarize(samples),
                            stages=[StageVerdict(stage="timed", status="passed", seconds=9.0)])
    with Store.open(url) as store:
        e = store.create_experiment("bench", ["hyperparams"], {}, "baseline", "bench",
                                    seed_sources=ComponentSet.shipped("baseline").sources)
        seed, _ = store.add_candidate(NewCandidate(experiment_id=e.id, component="hyperparams", source="A = 1\n", origin="seed"))
        child, _ = store.add_candidate(NewCandidate(experiment_id=e.id, component="hyperparams", source="A = 2\n",
                                                    origin="mutator", parent_id=seed.id, generation=1))
        for c in (seed, child):
            store.claim_pending(e.id, limit=1)
            store.record_evaluation(c.id, evaluation)
        store.record_champion(e.id, seed.id, None, {})


def measure(args: list[str], repeat: int) -> dict:
    walls, cpus, report = [], [], {}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    for _ in range(repeat):
        start = time.perf_counter()
        before = os.times()
        out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, check=True, env=env)
        after = os.times()
        walls.append(time.perf_counter() - start)
        cpus.append(after.children_user + after.children_system - before.children_user - before.children_system)
        report = json.loads(out.stdout.strip().splitlines()[-1])
    return {"command": "evolve " + " ".join(a for a in args if not a.startswith("sqlite")), "wall_s": statistics.median(walls),
            "cpu_s": statistics.median(cpus), "exit": report["exit"], "heavy": report["heavy"]}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default=None, help="database to inspect (default: a tiny one made here)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = options.db or f"sqlite:///{tmp}/bench.db"
        if options.db is None:
            sample_database(url)
        commands = [["--help"], ["start", "--help"], ["experiments", "--db", url], ["lineage", "--db", url],
                    ["show", "1", "--db", url], ["top", "--db", url], ["status", "--db", url],
                    ["diff", "1", "2", "--db", url], ["config", "show"]]
        rows = [measure(c, options.repeat) for c in commands]
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs; median of {options.repeat} runs")
    for row in rows:
        print(f"{row['command']:<28} wall {row['wall_s']:6.2f} s  cpu {row['cpu_s']:5.2f} s  exit {row['exit']}  "
              f"heavy modules: {', '.join(row['heavy']) or 'none'}")
    return rows


if __name__ == "__main__":
    main()
