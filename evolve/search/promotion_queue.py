"""The queue of paired comparisons waiting for the one in progress: best screening score first, and bounded.

Comparisons run one at a time (each attempt spends its share of the error budget in turn), so on many
slots candidates that pass the gate can arrive faster than comparisons finish. Only the best few can
ever be compared before the champion changes and the rest are gated again, so the queue keeps the
`limit` best and refuses the others at once, and each champion change refuses, in one write, those that
no longer pass the gate (promotions.py). Unbounded, a 100,000-candidate search on 64 slots queued
55,000 and spent its time scanning them (docs/BENCHMARKS.md, issue 27).
"""

import bisect
from collections.abc import Callable

from evolve.database.records import PromotionInfo


class PromotionQueue:
    """Queued promotions ordered by their candidate's screening score, best first; ties in arrival order."""

    def __init__(self, limit: int):
        self.limit = limit
        self._keys: list[tuple[float, int]] = []  # (-score, arrival): ascending is best first
        self._items: list[PromotionInfo] = []
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def add(self, promotion: PromotionInfo, score: float | None) -> list[PromotionInfo]:
        """Queue it; return what no longer fits (the worst beyond `limit`, possibly this one)."""
        key = (-score if score is not None else float("inf"), self._arrivals)
        self._arrivals += 1
        at = bisect.bisect(self._keys, key)
        self._keys.insert(at, key)
        self._items.insert(at, promotion)
        dropped = self._items[self.limit:]
        del self._keys[self.limit:], self._items[self.limit:]
        return dropped

    def pop(self) -> PromotionInfo:
        """The best queued one, removed."""
        del self._keys[0]
        return self._items.pop(0)

    def remove(self, refused: Callable[[PromotionInfo], bool]) -> list[PromotionInfo]:
        """Take out and return every queued promotion for which `refused` is true."""
        flags = [refused(item) for item in self._items]
        removed = [item for item, out in zip(self._items, flags) if out]
        self._keys = [key for key, out in zip(self._keys, flags) if not out]
        self._items = [item for item, out in zip(self._items, flags) if not out]
        return removed
