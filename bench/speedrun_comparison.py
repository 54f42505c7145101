"""Our component sets against the two reference scripts, interleaved, on one device.

Contestants, one run each per round, in the order of --only (A B C D A B C D ...), so that drifts
of clock, temperature or memory hit all alike:

- `frontier`: our components/frontier (the record plus Fulcrum Research's resolution curriculum);
- `record`: our components/record (the Hive's improvements, rewritten as our components);
- `baseline`: our components/baseline (airbench94_muon rewritten as our components);
- `airbench94_muon`: Keller Jordan's airbench94_muon.py, unchanged;
- `cifar10_speedrun`: the Hive's cifar10_speedrun.py, unchanged.

The reference scripts are copied by the person running this into the ignored folder `.refs/`
(docs/BENCHMARKS.md says how); they are never committed. Both read `cifar10/train.pt` and
`cifar10/test.pt` (a dict of uint8 NHWC `images`, int64 `labels` and `classes`) from their
working directory when the files exist, so writing that cache from our dataset feeds all four
the same images without changing a line of them. Each reference is imported as a module (its
`__main__` block does not run), its network built and compiled as its `__main__` does, warmed up
once with its own `main("warmup", model)`, then called as `main(run, model)` every round.

Times: on CUDA every contestant's time is CUDA-event time over its own timed region (ours:
harness.py's region, from the training images' preprocessing to the test logits; the references
leave their loaders' uint8-to-half conversion outside it). Our host-clock times are in the JSON.
Also reported: the wall time of one full evaluation of each contestant, i.e. its setup (build,
compile, warm-up run) plus all its timed rounds, as `evolve baseline --runs N` would pay it.

With --deadline the bench stops itself: it starts no round that the last one's wall time says
would end past the deadline, and contestants named in --optional join (after the first round)
only if their setup, estimated by the slowest setup so far, and --optional-rounds rounds still fit.
The JSON is rewritten after every round, so a bench killed from outside leaves what it measured.

On the GPU machine (decodes the shared JPEG pack first; see docs/BENCHMARKS.md):

    python bench/speedrun_comparison.py --jpeg-pack .data/cifar10_jpeg75.npz --runs 25 --out results.json

On a CPU (a check of this script; the reference scripts need CUDA and are skipped with the reason):

    python bench/speedrun_comparison.py --device cpu --data synthetic --runs 1
"""

import argparse
import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Run as a script, Python puts bench/ first on the path: put this checkout's root there instead,
# so its evaluator and components are the ones measured (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.data import Dataset, load_dataset, load_npz
from evaluator.harness import DeviceData, Speedrun, accuracy
from evaluator.settings import HarnessSettings
from evaluator.statistics import lower_confidence_bound
from evaluator.training import evaluation_seeds
from evolve.cli.arguments import parse_overrides  # the CLI's KEY=VALUE parser, so both accept the same

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
OURS = ("frontier", "record", "baseline")
DEFAULT_ORDER = ("frontier", "record", "cifar10_speedrun", "baseline", "airbench94_muon")
REFERENCES = {"airbench94_muon": ".refs/airbench94_muon.py", "cifar10_speedrun": ".refs/cifar10_speedrun.py"}
RATIO_BASE = "cifar10_speedrun"
CONFIDENCE = 0.95


@dataclass
class Round:
    accuracy: float
    seconds: float  # the contestant's own timed region (CUDA events on CUDA, host clock on the CPU)
    wall_seconds: float  # host wall time of the whole call, untimed parts included


@dataclass
class Contestant:
    name: str
    setup_seconds: float = 0.0  # build, compile, warm-up
    rounds: list[Round] = field(default_factory=list)
    skipped: str | None = None  # why it did not run

    def summary(self, base: "Contestant | None") -> dict:
        acc = [r.accuracy for r in self.rounds]
        sec = [r.seconds for r in self.rounds]
        ddof = 1 if len(self.rounds) > 1 else 0
        row = {
            "name": self.name,
            "runs": len(self.rounds),
            "accuracy_mean": float(np.mean(acc)),
            "accuracy_std": float(np.std(acc, ddof=ddof)),
            "accuracy_lower_bound": lower_confidence_bound(acc, CONFIDENCE),
            "time_mean": float(np.mean(sec)),
            "time_std": float(np.std(sec, ddof=ddof)),
            "setup_seconds": self.setup_seconds,
            "full_evaluation_wall_seconds": self.setup_seconds + sum(r.wall_seconds for r in self.rounds),
            "rounds": [vars(r) for r in self.rounds],
        }
        if base is not None and base.rounds:
            row["time_ratio"] = row["time_mean"] / float(np.mean([r.seconds for r in base.rounds]))
        return row


# ---------------------------------------------------------------------------------------------
# Data: one dataset for all four.


def decode_jpeg_pack(pack: Path, workdir: Path, decoder: Path | None) -> Path:
    """The shared JPEG pack decoded (once) with the decoder script that ships beside it."""
    out = workdir / "cifar10_uint8.npz"
    if out.exists():
        return out
    decoder = decoder or pack.parent / "decode_cifar10_jpeg75.py"
    if not decoder.exists():
        raise SystemExit(f"no decoder at {decoder}: pass --decoder PATH (decode_cifar10_jpeg75.py from shared/data)")
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(decoder), str(pack), str(out)], check=True)
    return out


def write_reference_cache(dataset: Dataset, directory: Path) -> None:
    """The references' own cache: cifar10/{train,test}.pt with uint8 NHWC images and int64 labels."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images = torch.from_numpy(np.ascontiguousarray(getattr(dataset, f"{split}_images")))
        labels = torch.from_numpy(getattr(dataset, f"{split}_labels").astype(np.int64))
        torch.save({"images": images, "labels": labels, "classes": CLASSES}, directory / f"{split}.pt")


# ---------------------------------------------------------------------------------------------
# Our component sets, through the harness.


class OurSet:
    def __init__(self, name: str, settings: HarnessSettings, dataset: Dataset, data: DeviceData):
        self.contestant = Contestant(name)
        self.dataset, self.data = dataset, data
        t0 = time.perf_counter()
        self.speedrun = Speedrun(
            ComponentSet.shipped(name), settings.device, settings.effective_compile(), settings.effective_overrides()
        )
        self.speedrun.warm_up(len(dataset.train_labels), len(dataset.test_labels))
        self.contestant.setup_seconds = time.perf_counter() - t0

    def run(self, round_index: int, seed: int) -> Round:
        t0 = time.perf_counter()
        order = np.random.default_rng(seed).permutation(len(self.dataset.train_labels))
        run_data = self.data.reordered(order)
        out = self.speedrun.run(run_data.train_images, run_data.train_labels, run_data.test_images, seed)
        seconds = out.timing.device_seconds if out.timing.device_seconds is not None else out.timing.host_seconds
        return Round(accuracy(out.logits, self.dataset.test_labels), seconds, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# The reference scripts, imported and called as their __main__ calls them.


def import_script(name: str, path: Path) -> types.ModuleType:
    """The script as a module: its definitions run, its __main__ block does not (both import
    torchvision, which the GPU image has; where it is missing the reference is skipped, saying so)."""
    spec = importlib.util.spec_from_file_location(f"reference_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_reference_result(result, log: str) -> tuple[float, float]:
    """(TTA accuracy, timed seconds) from main()'s return value and its log.

    cifar10_speedrun.py returns (val_acc, tta_val_acc, time_seconds); airbench94_muon.py returns
    tta_val_acc and prints time_seconds in the last column of its final 'eval' row.
    """
    if isinstance(result, tuple) and len(result) == 3:
        return float(result[1]), float(result[2])
    for line in log.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1] == "eval":
            return float(result), float(cells[5])
    raise RuntimeError(f"no final 'eval' row in the reference's log:\n{log}")


class ReferenceScript:
    def __init__(self, name: str, path: Path, workdir: Path, device: str):
        self.contestant = Contestant(name)
        self.workdir = workdir
        t0 = time.perf_counter()
        self.module = import_script(name, path)
        self.model = self.module.CifarNet().to(device)
        if device == "cuda":  # as the scripts' __main__ blocks do
            self.model = self.model.to(memory_format=torch.channels_last)
            self.model.compile(mode="max-autotune")
        self.call("warmup")
        self.contestant.setup_seconds = time.perf_counter() - t0

    def call(self, run):
        log = io.StringIO()
        with contextlib.chdir(self.workdir), contextlib.redirect_stdout(log):
            result = self.module.main(run, self.model)
        return result, log.getvalue()

    def run(self, round_index: int, seed: int) -> Round:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        result, log = self.call(round_index + 1)
        wall = time.perf_counter() - t0
        acc, seconds = parse_reference_result(result, log)
        return Round(acc, seconds, wall)


# ---------------------------------------------------------------------------------------------


def print_table(rows: list[dict], skipped: list[Contestant], base_name: str) -> None:
    head = f"{'':18s}{'runs':>5s}{'time (s)':>22s}{'accuracy (%)':>20s}{'acc. lower bound':>18s}{'time / ' + base_name:>26s}{'full eval wall (s)':>20s}"
    print("\n" + head)
    for r in rows:
        ratio = f"{r['time_ratio']:.4f}" if "time_ratio" in r else "-"
        lcb = f"{100 * r['accuracy_lower_bound']:.2f}" if np.isfinite(r["accuracy_lower_bound"]) else "-"
        print(
            f"{r['name']:18s}{r['runs']:5d}{r['time_mean']:12.4f} ± {r['time_std']:.4f}"
            f"{100 * r['accuracy_mean']:11.2f} ± {100 * r['accuracy_std']:.2f}{lcb:>18s}{ratio:>26s}"
            f"{r['full_evaluation_wall_seconds']:20.1f}"
        )
    print(f"accuracy lower bound: one-sided {CONFIDENCE:.0%} Student-t bound of the mean; "
          "full eval wall: setup (build, compile, warm-up) plus all timed runs")
    for c in skipped:
        print(f"skipped {c.name}: {c.skipped}")


class Bench:
    """The contestants in round order, set up on demand, and the report written after each round."""

    def __init__(self, args: argparse.Namespace, dataset: Dataset, settings: HarnessSettings):
        self.args, self.dataset, self.settings = args, dataset, settings
        self.contestants: dict[str, OurSet | ReferenceScript] = {}
        self.skipped: list[Contestant] = []
        self.data: DeviceData | None = None
        self.paths = {"airbench94_muon": args.airbench.resolve(), "cifar10_speedrun": args.speedrun.resolve()}
        self.workdir = args.workdir.resolve()
        self.stopped: str | None = None  # why the rounds ended before --runs, if they did

    def set_up(self, name: str) -> None:
        if name in OURS:
            if self.data is None:
                self.data = DeviceData.from_dataset(self.dataset, torch.device(self.args.device))
            print(f"setting up {name} (build, compile, warm-up)...", flush=True)
            self.contestants[name] = OurSet(name, self.settings, self.dataset, self.data)
            return
        if not self.paths[name].exists():
            self.skipped.append(Contestant(name, skipped=f"{self.paths[name]} is missing: copy the script there (docs/BENCHMARKS.md)"))
            return
        write_reference_cache(self.dataset, self.workdir / "cifar10")
        print(f"setting up {name} (import, compile, warm-up)...", flush=True)
        try:
            self.contestants[name] = ReferenceScript(name, self.paths[name], self.workdir, self.args.device)
        except Exception as e:  # noqa: BLE001  a reference that cannot run on this device is reported, not fatal
            self.skipped.append(Contestant(name, skipped=f"cannot run on {self.args.device}: {type(e).__name__}: {e}".splitlines()[0]))

    def rows(self) -> tuple[list[dict], str]:
        ran = {name: c.contestant for name, c in self.contestants.items() if c.contestant.rounds}
        base_name = RATIO_BASE if RATIO_BASE in ran else next(iter(ran), RATIO_BASE)
        return [c.summary(ran.get(base_name)) for c in ran.values()], base_name

    def write(self, device_name: str) -> None:
        if not self.args.out:
            return
        rows, base_name = self.rows()
        report = {
            "device": device_name,
            "torch": torch.__version__,
            "data": self.dataset.describe(),
            "ratio_base": base_name,
            "contestants": rows,
            "skipped": {c.name: c.skipped for c in self.skipped},
            "stopped": self.stopped,
        }
        self.args.out.write_text(json.dumps(report, indent=2))


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jpeg-pack", type=Path, default=None, help="shared/data/cifar10_jpeg75.npz: decoded into --workdir first")
    parser.add_argument("--decoder", type=Path, default=None, help="decode_cifar10_jpeg75.py; default: beside the pack")
    parser.add_argument("--data", default="cifar10", help="cifar10, synthetic or a decoded .npz (ignored with --jpeg-pack)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each contestant")
    parser.add_argument("--scale", default=None, choices=["full", "tiny"], help="our sets' scale; default full on cuda, tiny on cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override for all of our sets (e.g. epochs=1 for a quick check)")
    parser.add_argument("--only", default=",".join(DEFAULT_ORDER), help="comma-separated contestants, in round order")
    parser.add_argument("--optional", default="", help="contestants of --only that join only if the deadline leaves time")
    parser.add_argument("--optional-rounds", type=int, default=3, help="rounds an optional contestant must have time for")
    parser.add_argument("--deadline", type=float, default=None, help="seconds from the start after which no round may end")
    parser.add_argument("--airbench", type=Path, default=Path(REFERENCES["airbench94_muon"]), help="path to airbench94_muon.py")
    parser.add_argument("--speedrun", type=Path, default=Path(REFERENCES["cifar10_speedrun"]), help="path to cifar10_speedrun.py")
    parser.add_argument("--workdir", type=Path, default=Path(".bench_work"), help="decoded data and the references' cache")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here (after every round)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA GPU: use --device cpu for a check run")
    known = OURS + tuple(REFERENCES)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    optional = {n.strip() for n in args.optional.split(",") if n.strip()}
    unknown = [n for n in chosen + sorted(optional) if n not in known]
    if unknown:
        raise SystemExit(f"unknown contestants {unknown}: choose from {', '.join(known)}")
    if optional - set(chosen):
        raise SystemExit(f"--optional names {sorted(optional - set(chosen))}, which --only does not list")
    if not set(chosen) - optional:
        raise SystemExit("--optional names every contestant: at least one must run from the first round")
    deadline = started + args.deadline if args.deadline else float("inf")
    if args.jpeg_pack:
        dataset = load_npz(decode_jpeg_pack(args.jpeg_pack.resolve(), args.workdir.resolve(), args.decoder))
    else:
        dataset = load_dataset(args.data)
    print(f"data: {dataset.describe()}; device {args.device}; {args.runs} runs each, interleaved", flush=True)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"

    settings = HarnessSettings(device=args.device, data=args.data, scale=args.scale, hyperparams=parse_overrides(args.overrides))
    bench = Bench(args, dataset, settings)
    for name in chosen:
        if name not in optional:
            bench.set_up(name)
    pending = [n for n in chosen if n in optional]

    last_round = 0.0
    for round_index, seed in enumerate(evaluation_seeds(args.seed, args.runs)[1]):  # the seeds of `evolve baseline`
        if time.perf_counter() + 1.1 * last_round > deadline:
            bench.stopped = f"deadline: {round_index} of {args.runs} rounds fit in {args.deadline:.0f} s"
            break
        if pending and round_index == 1:
            join_if_time(bench, pending, deadline, last_round, args.optional_rounds)
        t0 = time.perf_counter()
        cells = []
        for name, contestant in bench.contestants.items():
            result = contestant.run(round_index, seed)
            contestant.contestant.rounds.append(result)
            cells.append(f"{name} {100 * result.accuracy:.2f}% {result.seconds:.4f} s")
        last_round = time.perf_counter() - t0
        print(f"round {round_index}: " + " | ".join(cells), flush=True)
        bench.write(device_name)
    # Optional contestants join before the second round; with fewer rounds they never do.
    bench.skipped += [Contestant(n, skipped="optional: the rounds ended before the second, where optional ones join") for n in pending]

    rows, base_name = bench.rows()
    print_table(rows, bench.skipped, base_name)
    if bench.stopped:
        print(f"stopped early: {bench.stopped}")
    print(f"device {device_name}, torch {torch.__version__}")
    bench.write(device_name)
    return 0


def join_if_time(bench: Bench, pending: list[str], deadline: float, round_seconds: float, rounds_needed: int) -> None:
    """Set up the optional contestants if their setup and `rounds_needed` rounds still fit."""
    setups = [c.contestant.setup_seconds for c in bench.contestants.values()] or [0.0]
    per_contestant = round_seconds / max(1, len(bench.contestants))
    for name in list(pending):
        need = max(setups) + rounds_needed * (round_seconds + per_contestant * (len(pending) - pending.index(name)))
        left = deadline - time.perf_counter()
        if need > left:
            bench.skipped.append(Contestant(name, skipped=f"optional: needs about {need:.0f} s, {left:.0f} s were left"))
        else:
            bench.set_up(name)
            round_seconds += per_contestant
    pending.clear()


if __name__ == "__main__":
    sys.exit(main())
