"""Our baseline component set against the original airbench94_muon.py, interleaved, on one GPU.

The reference script is fetched by the person running this and kept in an ignored folder (it is
never committed). It reads `cifar10/train.pt` and `cifar10/test.pt` from its working directory
when they exist, so both sides get the same data without changing a line of it.

    python bench/baseline_vs_airbench.py --data .data/cifar10_uint8.npz \
        --reference .refs/airbench94_muon.py --runs 25 [--out results.json]

Rounds alternate: one reference run, then one of ours, so that drifts of clock or temperature
hit both alike. Prints the mean and std of accuracy and time of each and their ratio.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from evaluator.component_set import ComponentSet
from evaluator.data import load_npz
from evaluator.harness import DeviceData, Speedrun, accuracy
from evaluator.runs import run_seeds

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_reference_data(dataset, directory: Path) -> None:
    """The reference's own cache format: uint8 NHWC images, int64 labels, class names."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images = torch.from_numpy(getattr(dataset, f"{split}_images"))
        labels = torch.from_numpy(getattr(dataset, f"{split}_labels"))
        torch.save({"images": images, "labels": labels, "classes": CLASSES}, directory / f"{split}.pt")


def import_reference(path: Path):
    spec = importlib.util.spec_from_file_location("airbench_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its __main__ block does not run
    return module


def reference_run(reference, model, run) -> tuple[float, float]:
    """One reference run; its accuracy is returned, its time read from the final log row."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        acc = reference.main(run, model)
    for line in log.getvalue().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1] == "eval":
            return float(acc), float(cells[5])
    raise RuntimeError(f"no final 'eval' row in the reference's log:\n{log.getvalue()}")


def describe(name: str, accs: list[float], times: list[float]) -> dict:
    return {
        "name": name,
        "runs": len(accs),
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs, ddof=1)),
        "time_mean": float(np.mean(times)),
        "time_std": float(np.std(times, ddof=1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="decoded CIFAR-10 .npz")
    parser.add_argument("--reference", type=Path, required=True, help="path to airbench94_muon.py")
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--workdir", type=Path, default=Path(".bench_work"))
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    dataset = load_npz(args.data)
    reference_path = args.reference.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    write_reference_data(dataset, args.workdir / "cifar10")
    os.chdir(args.workdir)

    reference = import_reference(reference_path)
    ref_model = reference.CifarNet().cuda().to(memory_format=torch.channels_last)
    ref_model.compile(mode="max-autotune")
    with contextlib.redirect_stdout(io.StringIO()):
        reference.main("warmup", ref_model)

    ours = Speedrun(ComponentSet.shipped("baseline"), "cuda", compile=True)
    ours.warm_up(len(dataset.train_labels), len(dataset.test_labels))
    data = DeviceData.from_dataset(dataset, torch.device("cuda"))

    results = {"reference": ([], []), "ours": ([], []), "ours_device_time": []}
    for run, seed in enumerate(run_seeds(None, args.runs)):
        acc, seconds = reference_run(reference, ref_model, run)
        results["reference"][0].append(acc)
        results["reference"][1].append(seconds)
        order = np.random.default_rng(seed).permutation(len(dataset.train_labels))
        run_data = data.reordered(order)
        out = ours.run(run_data.train_images, run_data.train_labels, run_data.test_images, seed)
        results["ours"][0].append(accuracy(out.logits, dataset.test_labels))
        results["ours"][1].append(out.timing.host_seconds)
        results["ours_device_time"].append(out.timing.device_seconds)
        print(
            f"round {run}: reference {100 * acc:.2f}% {seconds:.4f} s | "
            f"ours {100 * results['ours'][0][-1]:.2f}% {results['ours'][1][-1]:.4f} s "
            f"(device {out.timing.device_seconds:.4f} s)",
            flush=True,
        )

    ref = describe("airbench94_muon.py", *results["reference"])
    our = describe("cifar-evolve baseline", *results["ours"])
    our["device_time_mean"] = float(np.mean(results["ours_device_time"]))
    summary = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "reference": ref,
        "ours": our,
        "time_ratio": our["time_mean"] / ref["time_mean"],
        "accuracy_difference_points": 100 * (our["accuracy_mean"] - ref["accuracy_mean"]),
    }
    print(f"\n{'':24s}{'accuracy':>18s}{'time (s)':>20s}")
    for row in (ref, our):
        print(
            f"{row['name']:24s}{100 * row['accuracy_mean']:9.2f} ± {100 * row['accuracy_std']:.2f}%"
            f"{row['time_mean']:12.4f} ± {row['time_std']:.4f}"
        )
    print(f"time ratio ours/reference: {summary['time_ratio']:.4f}; accuracy difference: {summary['accuracy_difference_points']:+.3f} points")
    print(f"GPU {summary['gpu']}, torch {summary['torch']}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
