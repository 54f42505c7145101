"""Rich tables of run samples and their summary, shared by the CLI commands."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evaluator.results import Evaluation, RunSample, Summary


def sample_table() -> Table:
    table = Table(title="runs")
    for column in ("run", "seed", "accuracy", "time (s)", "device time (s)"):
        table.add_column(column, justify="right")
    return table


def sample_row(sample: RunSample) -> tuple[str, ...]:
    device_time = "-" if sample.device_time_seconds is None else f"{sample.device_time_seconds:.4f}"
    return (str(sample.run), str(sample.seed), f"{100 * sample.accuracy:.2f}%", f"{sample.time_seconds:.4f}", device_time)


def print_sample(console: Console, table: Table, sample: RunSample) -> None:
    """Add the run to the table and print one line as it finishes (runs can be slow)."""
    row = sample_row(sample)
    table.add_row(*row)
    console.print(f"run {sample.run}: accuracy {row[2]}, time {row[3]} s", highlight=False)


def print_summary(console: Console, table: Table, summary: Summary) -> None:
    console.print(table)
    pct = lambda x: f"{100 * x:.2f}%"
    overview = Table(title="summary", show_header=False)
    overview.add_column(justify="left")
    overview.add_column(justify="right")
    overview.add_row("runs", str(summary.runs))
    overview.add_row("accuracy mean ± std", f"{pct(summary.accuracy_mean)} ± {pct(summary.accuracy_std)}")
    overview.add_row(
        f"{100 * summary.confidence:.0f}% interval of mean accuracy",
        f"[{pct(summary.accuracy_ci_low)}, {pct(summary.accuracy_ci_high)}]",
    )
    overview.add_row(f"{100 * summary.confidence:.0f}% lower bound (one-sided)", pct(summary.accuracy_lower_bound))
    overview.add_row("time mean ± std", f"{summary.time_mean:.4f} ± {summary.time_std:.4f} s")
    if summary.scored_lower_bound is not None:
        overview.add_row(f"lower bound at {summary.reference_runs} runs (scored)", pct(summary.scored_lower_bound))
    if summary.penalty is not None:
        overview.add_row(f"accuracy penalty (target {pct(summary.target)})", f"{summary.penalty:.4f} s")
    overview.add_row("score = -time - penalty", f"{summary.score:.4f}")
    console.print(overview)


def print_evaluation(console: Console, evaluation: Evaluation) -> None:
    """Each cascade stage's verdict and cost, then the samples and the score."""
    stages = Table(title=f"cascade: {evaluation.status}")
    for column in ("stage", "verdict", "seconds", "message"):
        stages.add_column(column)
    for stage in evaluation.stages:
        colour = {"passed": "green", "stopped": "yellow"}.get(stage.status, "red")
        stages.add_row(stage.stage, f"[{colour}]{stage.status}[/]", f"{stage.seconds:.2f}", escape(stage.message or ""))  # candidate text: no markup
    console.print(stages)
    if evaluation.samples:
        table = sample_table()
        for sample in evaluation.samples:
            table.add_row(*sample_row(sample))
        if evaluation.summary:
            print_summary(console, table, evaluation.summary)
        else:
            console.print(table)
    if evaluation.profile:
        console.print(evaluation.profile.as_text(), highlight=False)
    for flag in evaluation.flags:
        console.print(f"[yellow]flag:[/] {escape(flag)}", highlight=False)
