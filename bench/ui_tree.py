"""Does the `evolve ui` experiment page stay usable at a few thousand candidates? Measured.

Fills an SQLite database in a temporary folder with N synthetic candidates (a random lineage:
each child of a random earlier candidate, most evaluated, some rejected, a champion path), serves
it with the real app, and drives headless Chromium (Debian's chromium and chromium-driver):
reports the data endpoint's time and size, the time from navigation until both charts are drawn,
the time of one full redraw after a live update, the nodes the tree draws, and the page's
JS heap.

    python bench/ui_tree.py --candidates 3000 [--reuse /tmp/evolve-ui-bench-XXXX/evolve.db]
"""

import argparse
import json
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser_support import chromium, close, running  # noqa: E402
from evaluator.results import Evaluation, RunSample, StageVerdict  # noqa: E402
from evaluator.statistics import summarize  # noqa: E402
from evolve.database import NewCandidate, Store  # noqa: E402
from evolve.ui.app import create_app  # noqa: E402


def run(i: int, accuracy: float, seconds: float) -> RunSample:
    return RunSample(run=i, seed=i, accuracy=accuracy, time_seconds=seconds, device_name="bench", torch_version="2")


def fill(url: str, n: int, rng: random.Random) -> None:
    source = "def step(x):\n    return x * {}\n"
    with Store.open(url) as store:
        experiment = store.create_experiment("bench", ["optimizer"], {"seed_set": "baseline"}, "baseline", "cpu")
        alive, best = [], None  # parents are drawn from the recent evaluated candidates, as selection would
        for i in range(n):
            parent = rng.choice(alive[-200:]) if alive else None
            origin = "seed" if parent is None else rng.choice(["llm", "mutator", "mutator"])
            candidate, _ = store.add_candidate(NewCandidate(
                experiment_id=experiment.id, component="optimizer", source=source.format(i), origin=origin,
                parent_id=parent, generation=i // 8, island=i % 4,
            ))
            if rng.random() < 0.2 and parent is not None:
                store.record_evaluation(candidate.id, Evaluation(
                    changed=["optimizer"], status="rejected",
                    stages=[StageVerdict(stage="static", status="rejected", message="line 1: no", seconds=0.01)],
                ))
                continue
            samples = [run(r, rng.gauss(0.94, 0.002), rng.gauss(3.0 - i / n, 0.05)) for r in range(3)]
            summary = summarize(samples)
            alive.append(candidate.id)
            store.record_evaluation(candidate.id, Evaluation(
                changed=["optimizer"], status="evaluated", samples=samples, summary=summary,
                stages=[StageVerdict(stage="timed", status="passed", seconds=9.0)],
            ))
            if best is None or summary.score > best[1]:
                store.record_champion(experiment.id, candidate.id, best[0] if best else None, {"reason": "bench"})
                best = (candidate.id, summary.score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", type=Path, help="a database this script filled before (filling takes minutes)")
    args = parser.parse_args()
    folder = args.reuse.parent if args.reuse else Path(tempfile.mkdtemp(prefix="evolve-ui-bench-"))
    url = f"sqlite:///{args.reuse or folder / 'evolve.db'}"
    if not args.reuse:
        started = time.perf_counter()
        fill(url, args.candidates, random.Random(args.seed))
        print(f"filled {args.candidates} candidates in {time.perf_counter() - started:.1f} s")
    with running(create_app(url)) as base:
        started = time.perf_counter()
        body = urllib.request.urlopen(f"{base}/api/experiments/1", timeout=60).read()
        print(f"GET /api/experiments/1: {time.perf_counter() - started:.3f} s, {len(body) / 1e6:.2f} MB, "
              f"{len(json.loads(body)['nodes'])} nodes")
        started = time.perf_counter()
        urllib.request.urlopen(f"{base}/api/version", timeout=60).read()
        print(f"GET /api/version: {time.perf_counter() - started:.3f} s")
        driver = chromium()
        try:
            started = time.perf_counter()
            driver.get(f"{base}/experiments/1")
            while not driver.execute_script("return document.body.dataset.loaded"):
                if time.perf_counter() - started > 300:
                    raise SystemExit(f"the page never finished drawing: {driver.get_log('browser')}")
                time.sleep(0.05)
            print(f"experiment page drawn: {time.perf_counter() - started:.2f} s after navigation")
            redraw = driver.execute_async_script(
                "const done = arguments[0]; const t = performance.now();"
                "window.evolveUI.load().then(() => done(performance.now() - t));")
            print(f"one live redraw (fetch + plot + tree): {redraw / 1000:.2f} s")
            drawn = driver.execute_script("return window.evolveUI.treeNodes().length")
            points = driver.execute_script("return window.evolveUI.plotCount()")
            print(f"tree draws {drawn} nodes (the rest collapsed off the champion's path); plot draws {points} points")
            expand = driver.execute_async_script(
                "const done = arguments[0]; const t = performance.now();"
                "document.getElementById('expand-all').click();"
                "requestAnimationFrame(() => done([performance.now() - t, window.evolveUI.treeNodes().length]));")
            print(f"expand all: {expand[0] / 1000:.2f} s, then {expand[1]} nodes drawn")
            heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null")
            if heap:
                print(f"JS heap: {heap / 1e6:.0f} MB")
            driver.save_screenshot(str(folder / "experiment.png"))
            print(f"screenshot: {folder / 'experiment.png'}")
        finally:
            close(driver)


if __name__ == "__main__":
    main()
