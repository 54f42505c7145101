"""`evolve calibrate`: measure this device's paired noise and what the promotion rule does with it.
The options and their help are declared in evolve/cli/app.py."""

import sys

from rich.console import Console
from rich.table import Table

from evaluator.calibration import CalibrationReport, calibration_report
from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError, load_dataset
from evaluator.promotion import PromotionSettings, measure_pairs
from evaluator.settings import HarnessSettings, ScoreSettings
from evolve.cli.arguments import parse_overrides
from evolve.cli.output import fail
from evolve.database import DatabaseError, Store
from evolve.database.decisions import record_calibration

console = Console(highlight=False)


def subject_set(store: Store, components: str, candidate: int | None) -> tuple[ComponentSet, str]:
    """The set to measure against itself, and how to name it."""
    if candidate is None:
        return ComponentSet.shipped(components), f"shipped set {components}"

    info = store.candidate(candidate)
    experiment = store.experiment(str(info.experiment_id))
    # the stored seed set, not the package's
    return ComponentSet(sources=store.component_set_sources(info.id)), f"candidate #{candidate} of {experiment.name}"


def calibrate(
    *, components: str, candidate: int | None, pairs: int, gain: float | None, simulations: int, device: str, data: str,
    scale: str | None, set_: list[str] | None, target: float, experiment_alpha: float, min_gain_seconds: float | None,
    db: str, as_json: bool,
) -> None:
    """Run a set against itself in the paired protocol, report what it measured and store the calibration."""
    try:
        harness = HarnessSettings(device=device, data=data, scale=scale, hyperparams=parse_overrides(set_))
        score = ScoreSettings(target=target)
        settings = PromotionSettings(pairs=pairs, experiment_alpha=experiment_alpha, min_gain_seconds=min_gain_seconds)
        dataset = load_dataset(harness.data)
    except (ValueError, DatasetError) as e:
        fail(str(e), code=1)
    try:
        with Store.open(db) as store:
            component_set, subject = subject_set(store, components, candidate)
            if not as_json:
                console.print(f"calibrating {subject} against itself: {pairs} pairs on {device}, data {dataset.describe()}")
            measured = measure_pairs(component_set, component_set, dataset, harness, settings)
            if measured.error is not None and len(measured.candidate_samples) < 2:
                fail(f"the paired runs failed: {measured.error}", code=1)
            report = calibration_report(measured.candidate_samples, measured.incumbent_samples, subject, settings, score,
                                        gain, simulations)
            calibration_id = record_calibration(store, report.device_name, subject, report.pairs, report.time_noise_seconds,
                                                report.accuracy_std, report)
    except (DatabaseError, ComponentError, ValueError) as e:
        fail(str(e), code=1)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    print_report(report, calibration_id, measured.flags)


def print_report(report: CalibrationReport, calibration_id: int, flags: list[str]) -> None:
    table = Table(title=f"calibration #{calibration_id}: {report.subject} on {report.device_name}, {report.pairs} pairs",
                  show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("time per run", f"{report.time_mean:.4f} s, std {report.time_std:.4f} s")
    table.add_row("paired time noise (robust std of differences)", f"{report.time_noise_seconds:.4f} s")
    table.add_row("accuracy per run", f"{report.accuracy_mean:.2%}, std {100 * report.accuracy_std:.3f} points")
    table.add_row("paired accuracy differences, std", f"{100 * report.accuracy_pair_std:.3f} points")
    table.add_row("minimum gain the search will use", f"{report.min_gain_seconds:.4f} s ({report.min_gain_source})")
    table.add_row(f"false promotions, simulated A/A at attempt 1 ({report.simulations})",
                  f"{report.false_promotion_rate:.2%} (may spend {report.attempt_alpha:.2%})")
    table.add_row("false promotions, whole experiment", f"at most {report.experiment_alpha:.0%} (alpha spending)")
    for need in report.pairs_needed:
        pairs = "more than 64" if need.pairs is None else str(need.pairs)
        table.add_row(f"pairs to detect {report.gain_seconds:.4f} s at attempt {need.attempt} (alpha {need.alpha:.2g})",
                      f"{pairs} (80% power)")
    console.print(table)
    for flag in flags:
        console.print(f"[yellow]flag:[/] {flag}")
    console.print("stored; searches on this device now default to this minimum gain (set promotion.min_gain_seconds to override)")
