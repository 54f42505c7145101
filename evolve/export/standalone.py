"""The command line of an exported speedrun script: runs, per-run table, summary statistics.

`evolve export` copies this module verbatim into the script, after the harness's data, clock and
training code (whose imports from this project are dropped there, since they are then defined
in the same file). It may therefore import only the standard library, numpy and torch.

The statistics need Student-t quantiles. Users of the script may lack scipy, so they are
computed here from the closed-form distribution function for whole degrees of freedom
(Abramowitz and Stegun 26.7.3 and 26.7.4), inverted by bisection to full double precision;
tests/test_export.py compares them with scipy.
"""

import argparse
import hashlib
import json
import math
import sys

import numpy as np
import torch

from evaluator.data import DatasetError, load_dataset
from evaluator.settings import SCALES
from evaluator.timing import Stopwatch, Timing
from evaluator.training import (
    HarnessError,
    build_model,
    evaluation_seeds,
    module_from_source,
    random_data,
    reordered,
    reset_torch_flags,
    speedrun,
    training_order,
)

# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with a whole number of degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be a positive whole number, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    # P(|T| <= |t|) as a finite sum of powers of cos(theta); its terms shrink, so no cancellation.
    if df % 2 == 1:
        term, total = 1.0, 0.0
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= 2 * k / (2 * k + 1) * cos2
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:
        term, total = 1.0, 0.0
        for k in range(1, df // 2 + 1):
            total += term
            term *= (2 * k - 1) / (2 * k) * cos2
        inside = math.sin(theta) * total
    return 0.5 + 0.5 * inside if t >= 0 else 0.5 - 0.5 * inside


def student_t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p, by bisection on the distribution function."""
    if not 0 < p < 1:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, 2 * high
    while True:
        middle = (low + high) / 2
        if middle in (low, high):  # the interval is down to adjacent floats
            return middle
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle


def summarize(accuracies: list[float], times: list[float], confidence: float, target: float, std_floor: float = 0.0014) -> dict:
    """Mean and std of accuracy and time, the Student-t interval and one-sided lower bound of the
    mean accuracy, as `evolve baseline` reports them (evaluator/statistics.py): the std never
    below the prior per-run noise `std_floor`, bounds clipped to [0, 1], none from a single run."""
    acc, seconds = np.asarray(accuracies, dtype=float), np.asarray(times, dtype=float)
    n = len(acc)
    ddof = 1 if n > 1 else 0
    mean, std = float(acc.mean()), float(acc.std(ddof=ddof))
    clip = lambda x: min(1.0, max(0.0, x))  # noqa: E731
    if n < 2:
        low, high, lower_bound = 0.0, 1.0, 0.0
    else:
        sem = max(std, std_floor) / math.sqrt(n)
        half_width = student_t_quantile((1 + confidence) / 2, n - 1) * sem
        low, high = clip(mean - half_width), clip(mean + half_width)
        lower_bound = clip(mean - student_t_quantile(confidence, n - 1) * sem)
    return {
        "runs": n,
        "accuracy_mean": mean,
        "accuracy_std": std,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "accuracy_lower_bound": lower_bound,
        "time_mean": float(seconds.mean()),
        "time_std": float(seconds.std(ddof=ddof)),
        "confidence": confidence,
        "target": target,
    }


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_value(pair: str) -> tuple[str, float | int | bool]:
    """KEY=VALUE into a typed hyperparameter override: int, float, true or false."""
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{pair!r} is not KEY=VALUE (example: --set epochs=7.5)")
    if raw.strip().lower() in ("true", "false"):
        return key, raw.strip().lower() == "true"
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{pair!r}: the value must be a number, true or false")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train CIFAR-10 N times with the components above and report the statistics.")
    parser.add_argument("--runs", type=int, default=5, help="timed runs, each on a fresh seed and training order")
    parser.add_argument("--data", default="cifar10", help="cifar10 (downloaded once through torchvision), synthetic, or PATH.npz")
    parser.add_argument("--target", type=float, default=0.94, help="accuracy the lower bound should reach (fraction)")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the interval and lower bound")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--seed", type=int, default=None, help="base seed of the runs; default fresh random seeds")
    parser.add_argument("--scale", choices=sorted(SCALES), default=None, help="default: full on cuda, tiny on cpu (for checks)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on for cuda")
    parser.add_argument("--set", dest="overrides", type=parse_value, action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the samples and summary as JSON instead of tables")
    parser.add_argument("--save-logits", metavar="PATH.npy", help="save the test logits, float32 (runs, test images, 10)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 0.5 < args.confidence < 1:
        parser.error("--confidence must lie between 0.5 and 1")
    return args


def hyperparameters(defaults: dict, scale: str, overrides: list[tuple[str, object]]) -> dict:
    """HYPERPARAMS with the scale's overrides, then the command line's, applied on top."""
    hp = dict(defaults)
    for key, value in [*SCALES[scale].items(), *overrides]:
        if key not in hp:
            raise SystemExit(f"error: cannot override unknown hyperparameter {key!r}; known: {', '.join(hp)}")
        hp[key] = value
    return hp


def timed_run(components: dict, model, hp: dict, orthogonalize, data: tuple, seed: int, device) -> tuple[torch.Tensor, Timing]:
    """One speedrun on the in-process clock: from the network's reset to the test logits, the data
    already on the device (the evaluator's scored time, taken around a sandboxed worker's run,
    also covers the data's handover to it and the logits' return)."""
    train_images, train_labels, test_images = data
    stopwatch = Stopwatch(device)
    stopwatch.start()
    logits = speedrun(components, model, hp, orthogonalize, seed, device, train_images, train_labels, test_images)
    timing = stopwatch.stop()
    return logits.detach().float().cpu(), timing


def print_summary(summary: dict) -> None:
    def pct(x: float) -> str:
        return f"{100 * x:.2f}%"

    level = f"{100 * summary['confidence']:.0f}%"
    reached = "reached" if summary["accuracy_lower_bound"] >= summary["target"] else "not reached"
    rows = [
        ("runs", str(summary["runs"])),
        ("accuracy mean ± std", f"{pct(summary['accuracy_mean'])} ± {pct(summary['accuracy_std'])}"),
        (f"{level} interval of mean accuracy", f"[{pct(summary['accuracy_ci_low'])}, {pct(summary['accuracy_ci_high'])}]"),
        (f"{level} lower bound (one-sided)", pct(summary["accuracy_lower_bound"])),
        ("time mean ± std", f"{summary['time_mean']:.4f} ± {summary['time_std']:.4f} s"),
        (f"target {pct(summary['target'])}", f"{reached} by the lower bound"),
    ]
    for label, value in rows:
        print(f"{label:<36}{value}")


def main(component_sources: dict[str, str], argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda was asked for but torch sees no CUDA GPU: use --device cpu")
    device = torch.device(args.device)
    scale = args.scale or ("full" if args.device == "cuda" else "tiny")
    compile = args.device == "cuda" if args.compile is None else args.compile
    try:
        dataset = load_dataset(args.data)
    except DatasetError as e:
        raise SystemExit(f"error: {e}") from e
    say = (lambda text: None) if args.json else print

    reset_torch_flags(device)
    components = {name: module_from_source(name, source) for name, source in component_sources.items()}
    hp = hyperparameters(components["hyperparams"].HYPERPARAMS, scale, args.overrides)
    model, orthogonalize = build_model(components, hp, device, compile)
    train_images = torch.from_numpy(dataset.train_images).to(device)
    train_labels = torch.from_numpy(dataset.train_labels).to(device)
    test_images = torch.from_numpy(dataset.test_images).to(device)
    num_train, num_test = len(train_labels), len(test_images)

    say(f"{dataset.describe()}, device {args.device}, scale {scale}, compile {compile}, {args.runs} runs")
    say("warming up on random data (untimed)...")
    warm_up_seed, seeds = evaluation_seeds(args.seed, args.runs)
    try:
        timed_run(components, model, hp, orthogonalize, random_data(num_train, num_test, warm_up_seed, device), warm_up_seed, device)
        say(f"{'run':>4} {'seed':>11} {'accuracy':>9} {'time (s)':>9} {'device time (s)':>16}")
        samples, all_logits = [], []
        for run, seed in enumerate(seeds):
            images, labels = reordered(train_images, train_labels, training_order(seed, num_train))
            logits, timing = timed_run(components, model, hp, orthogonalize, (images, labels, test_images), seed, device)
            accuracy = float((logits.argmax(1).numpy() == dataset.test_labels).mean())
            samples.append({"run": run, "seed": seed, "accuracy": accuracy, "time_seconds": timing.host_seconds,
                            "device_time_seconds": timing.device_seconds})
            all_logits.append(logits.numpy())
            device_time = "-" if timing.device_seconds is None else f"{timing.device_seconds:.4f}"
            say(f"{run:>4} {seed:>11} {100 * accuracy:>8.2f}% {timing.host_seconds:>9.4f} {device_time:>16}")
    except HarnessError as e:
        raise SystemExit(f"error: {e}") from e

    summary = summarize([s["accuracy"] for s in samples], [s["time_seconds"] for s in samples], args.confidence, args.target)
    if args.save_logits:
        np.save(args.save_logits, np.stack(all_logits))
    if args.json:
        report = {
            "samples": samples,
            "summary": summary,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch_version": torch.__version__,
            "hyperparams": hp,
            "components": {name: hashlib.sha256(source.encode()).hexdigest() for name, source in component_sources.items()},
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(summary)
