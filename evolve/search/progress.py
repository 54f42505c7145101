"""The live view of a running search: a rich panel on a terminal, plain log lines otherwise."""

import time
from collections import Counter

from pydantic import BaseModel, Field
from rich.console import Console
from rich.control import strip_control_codes
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from evolve.search.estimate import duration


class LoopStats(BaseModel):
    experiment: str
    proposer: str
    generation: int = 0
    generations: int = 0
    proposed: int = 0
    duplicates: int = 0
    near_copies: int = 0  # proposals skipped as near-copies of evaluated programs (novelty.py)
    merges: int = 0  # component merges proposed (merge.py)
    evaluated: int = 0
    queued: int = 0
    running: int = 0
    rejections: Counter = Field(default_factory=Counter, description="reason -> count, for rejected, failed and unusable")
    best_score: float | None = None
    champion_id: int | None = None
    champion_time: float | None = None
    champion_accuracy: float | None = None
    champion_history: str = Field("-", description="every champion in one line, the current one last")
    jobs: list[str] = Field(default_factory=list, description="one line per running job: candidate, stage, run k of N, elapsed")
    remaining: str = Field("-", description="estimated time left, from measured cost per candidate and the budgets")
    device_unit: str = Field("GPU hours", description="how device time is named: GPU hours, or CPU hours on a CPU")
    gpu_hours: float = 0.0
    tokens: int = 0
    usd: float = 0.0
    note: str = ""

    def table(self, elapsed: float = 0.0) -> Table:
        table = Table(title=f"evolve: {escape(self.experiment)}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        champion = "-" if self.champion_id is None else (
            f"#{self.champion_id}: {self.champion_time:.4f} s, {self.champion_accuracy:.2%}"
            if self.champion_time is not None and self.champion_accuracy is not None else f"#{self.champion_id}"
        )
        rows = [
            ("proposer", self.proposer),
            ("elapsed / left", f"{duration(elapsed)} / {self.remaining}"),
            ("generation", f"{self.generation} of {self.generations}" if self.generations else str(self.generation)),
            ("proposed / duplicates / near-copies / merges", f"{self.proposed} / {self.duplicates} / {self.near_copies} / {self.merges}"),
            ("evaluated / running / queued", f"{self.evaluated} / {self.running} / {self.queued}"),
            ("running now", "\n".join(self.jobs) or "-"),
            ("rejections", ", ".join(f"{reason}: {n}" for reason, n in self.rejections.most_common(4)) or "-"),
            ("best score", "-" if self.best_score is None else f"{self.best_score:.4f}"),
            ("champion", champion),
            ("champion history", self.champion_history),
            (self.device_unit, f"{self.gpu_hours:.3f}"),
            ("LLM tokens / USD", f"{self.tokens} / ${self.usd:.2f}"),
        ]
        if self.note:
            rows.append(("note", self.note))
        for what, value in rows:
            table.add_row(what, escape(value))
        return table


REDRAW_SECONDS = 0.25


class Progress:
    """Redraws the stats on a terminal; elsewhere prints one line per event."""

    def __init__(self, console: Console, stats: LoopStats, heartbeat_seconds: float = 60.0):
        self.console, self.stats = console, stats
        self.started = time.monotonic()
        self.heartbeat_seconds = heartbeat_seconds  # without a terminal: a status line this often
        self._last_line = self.started
        self._last_redraw = 0.0
        self.live = Live(stats.table(), console=console, refresh_per_second=2) if console.is_terminal else None

    def __enter__(self) -> "Progress":
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.update(self.stats.table(self.elapsed))  # the last state, whatever the throttle skipped
            self.live.__exit__(*exc)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def refresh(self) -> None:
        if self.live:
            now = time.monotonic()
            if now - self._last_redraw >= REDRAW_SECONDS:  # the panel redraws twice a second: build its table as often
                self._last_redraw = now
                self.live.update(self.stats.table(self.elapsed))
        elif time.monotonic() - self._last_line >= self.heartbeat_seconds:
            self.event(self.status_line())

    def status_line(self) -> str:
        s = self.stats
        jobs = "; ".join(s.jobs) or "nothing running"
        return (f"status: generation {s.generation} of {s.generations}, {s.evaluated} evaluated, {s.queued} queued; "
                f"{jobs}; time left: {s.remaining}")

    def event(self, message: str) -> None:
        """One line in the log (above the live panel on a terminal)."""
        self._last_line = time.monotonic()
        line = f"[{self.elapsed:7.1f} s] {message}"
        if self.live is None:  # a log, not a terminal: the line as it is (rich's rendering costs more than the loop's step)
            if not self.console.quiet:
                self.console.file.write(strip_control_codes(line) + "\n")
                self.console.file.flush()
        else:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        self.refresh()
