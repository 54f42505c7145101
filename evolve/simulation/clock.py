"""When simulated jobs finish: the order a cluster of `slots` devices would hand their results back in.

A job's result is drawn when it is submitted (the landscape and the noise need nothing else), but
on a cluster the loop sees it only once its device seconds have passed, while the other slots'
jobs go on; with 64 slots a result arrives while 63 others are in flight, and the loop chooses
parents from a population that lags behind the work under way. Two modes:

- virtual (`wall_seconds_per_device_second` = 0): the clock jumps. The earliest-finishing job is
  handed back as soon as every slot is busy, or when the loop has submitted nothing for
  `IDLE_WAIT_SECONDS` of wall time (it has nothing more to start: the end of a search, or a
  generation waiting for its last results). Thousands of evaluations a second, results in the
  order their device time says.
- paced (> 0): a simulated device second takes that many wall seconds; a job is handed back when
  its wall deadline passes, whether the loop is ready or not. The slots' idle share then measures
  what the loop and the database cost a cluster (bench/search_dynamics.py --paced).

Two idle figures, because a search's start (the seed screened alone) and end (the last jobs
draining) leave slots idle whatever the loop costs: `idle_share` over the whole run, and
`steady_idle_share` from the moment every slot first held a job to the last moment every slot
did, the stretch in which an idle slot means the loop did not refill it in time (after it, the
slots drain: the search has nothing more to start, or only its last comparisons). `refill_seconds()`
are the wall delays, in that stretch, from a result's hand-back to the next submission (the loop's
reaction time per slot).
"""

import heapq
import itertools
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

IDLE_WAIT_SECONDS = 0.05  # virtual mode: a loop that submitted nothing for this long is waiting for results


@dataclass(order=True)
class PendingJob:
    finish: float  # simulated seconds since the first submission
    order: int
    future: Future = field(compare=False)
    result: object = field(compare=False)
    seconds: float = field(compare=False)
    submitted_wall: float = field(compare=False)


class SimulatedClock:
    """Holds each drawn result until its simulated finish; counts device seconds and the slots' busy time."""

    def __init__(self, slots: int, wall_seconds_per_device_second: float = 0.0):
        self.slots, self.pace = slots, wall_seconds_per_device_second
        self.now = 0.0  # simulated seconds: the finish of the last job handed back (virtual), or wall-derived (paced)
        self.device_seconds = 0.0  # of the jobs handed back so far
        self.busy_wall_seconds = 0.0  # wall seconds the handed-back jobs held a slot (paced mode's idle share)
        self.first_wall: float | None = None
        self.last_wall: float | None = None
        self._refills: list[tuple[float, float]] = []  # (submission wall, delay since the hand-back it refilled)
        self._busy_integral = 0.0  # slot-wall-seconds with a job on the slot, up to `_changed_wall`
        self._changed_wall: float | None = None
        self._first_full: tuple[float, float] | None = None  # (wall, busy integral) when every slot first held a job
        self._last_full: tuple[float, float] | None = None  # the same at the latest submission that filled every slot
        self._handed_back: deque[float] = deque()  # walls of hand-backs not yet followed by a submission
        self._pending: list[PendingJob] = []
        self._order = itertools.count()
        self._lock = threading.Condition()
        self._last_submit = time.monotonic()
        self._closed = False
        self._thread = threading.Thread(target=self._watch, name="simulated-clock", daemon=True)
        self._thread.start()

    def submit(self, result: object, seconds: float) -> Future:
        """A job taking `seconds` of simulated device time, whose result is `result`."""
        future: Future = Future()
        wall = time.monotonic()
        with self._lock:
            self.first_wall = wall if self.first_wall is None else self.first_wall
            start = self._wall_now(wall) if self.pace else self.now
            self._count_busy(wall)
            heapq.heappush(self._pending, PendingJob(start + seconds, next(self._order), future, result, seconds, wall))
            self._last_submit = wall
            if self._handed_back:
                self._refills.append((wall, wall - self._handed_back.popleft()))
            if len(self._pending) >= self.slots:
                self._first_full = self._first_full or (wall, self._busy_integral)
                self._last_full = (wall, self._busy_integral)
            if not self.pace and len(self._pending) >= self.slots:
                self._hand_back()
            self._lock.notify_all()
        return future

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def idle_share(self) -> float | None:
        """Share of the slots' wall time between the first submission and the last result with no job on them."""
        if self.first_wall is None or self.last_wall is None or self.last_wall <= self.first_wall:
            return None
        return max(0.0, 1.0 - self.busy_wall_seconds / (self.slots * (self.last_wall - self.first_wall)))

    def refill_seconds(self) -> list[float]:
        """Hand-back to the next submission, per slot refilled between every slot first and last busy."""
        if self._first_full is None or self._last_full is None:
            return []
        return [delay for wall, delay in self._refills if self._first_full[0] <= wall <= self._last_full[0]]

    def steady_idle_share(self) -> float | None:
        """Idle share from every slot first busy to every slot last busy: the start and the final drain left out."""
        if self._first_full is None or self._last_full is None:
            return None
        (start, busy_start), (end, busy_end) = self._first_full, self._last_full
        if end <= start:
            return None
        return max(0.0, 1.0 - (busy_end - busy_start) / (self.slots * (end - start)))

    def drop(self) -> None:
        """Abandon every job in flight (their results are no verdicts)."""
        with self._lock:
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _wall_now(self, wall: float) -> float:
        return (wall - self.first_wall) / self.pace

    def _hand_back(self) -> None:
        """The earliest-finishing job's result is ready (called with the lock held)."""
        wall = time.monotonic()
        self._count_busy(wall)
        job = heapq.heappop(self._pending)
        self._handed_back.append(wall)
        self.now = max(self.now, job.finish)
        self.device_seconds += job.seconds
        self.busy_wall_seconds += wall - job.submitted_wall
        self.last_wall = wall
        job.future.set_result(job.result)

    def _count_busy(self, wall: float) -> None:
        """Add the slots held since the last change (called with the lock held, before the count changes)."""
        if self._changed_wall is not None:
            self._busy_integral += min(len(self._pending), self.slots) * (wall - self._changed_wall)
        self._changed_wall = wall

    def _watch(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if not self._pending:
                    self._lock.wait(0.1)
                    continue
                wall = time.monotonic()
                if self.pace:
                    due = self._pending[0].finish - self._wall_now(wall)
                    if due <= 0:
                        self._hand_back()
                        continue
                    self._lock.wait(min(due * self.pace, 0.1))
                elif wall - self._last_submit >= IDLE_WAIT_SECONDS:
                    self._hand_back()
                else:
                    self._lock.wait(IDLE_WAIT_SECONDS)
