"""The live view of a running search: a rich panel on a terminal, plain log lines otherwise."""

import time
from collections import Counter

from pydantic import BaseModel, Field
from rich.console import Console
from rich.live import Live
from rich.table import Table


class LoopStats(BaseModel):
    experiment: str
    proposer: str
    generation: int = 0
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
    gpu_hours: float = 0.0
    tokens: int = 0
    usd: float = 0.0

    def table(self) -> Table:
        table = Table(title=f"evolve: {self.experiment}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        champion = "-" if self.champion_id is None else (
            f"#{self.champion_id}: {self.champion_time:.4f} s, {self.champion_accuracy:.2%}"
            if self.champion_time is not None and self.champion_accuracy is not None else f"#{self.champion_id}"
        )
        rows = [
            ("proposer", self.proposer),
            ("generation", str(self.generation)),
            ("proposed / duplicates / near-copies / merges", f"{self.proposed} / {self.duplicates} / {self.near_copies} / {self.merges}"),
            ("evaluated / running / queued", f"{self.evaluated} / {self.running} / {self.queued}"),
            ("rejections", ", ".join(f"{reason}: {n}" for reason, n in self.rejections.most_common(4)) or "-"),
            ("best score", "-" if self.best_score is None else f"{self.best_score:.4f}"),
            ("champion", champion),
            ("GPU hours", f"{self.gpu_hours:.3f}"),
            ("LLM tokens / USD", f"{self.tokens} / ${self.usd:.2f}"),
        ]
        for row in rows:
            table.add_row(*row)
        return table


class Progress:
    """Redraws the stats on a terminal; elsewhere prints one line per event."""

    def __init__(self, console: Console, stats: LoopStats):
        self.console, self.stats = console, stats
        self.live = Live(stats.table(), console=console, refresh_per_second=2) if console.is_terminal else None
        self.started = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def refresh(self) -> None:
        if self.live:
            self.live.update(self.stats.table())

    def event(self, message: str) -> None:
        """One line in the log (above the live panel on a terminal)."""
        elapsed = time.monotonic() - self.started
        self.console.print(f"[{elapsed:7.1f} s] {message}", highlight=False, markup=False)
        self.refresh()
