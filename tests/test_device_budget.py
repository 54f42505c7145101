"""bench/device_budget.py's attribution: phases never count twice, add up to the wall time, never go negative."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "device_budget.py"


def load_device_budget():
    spec = importlib.util.spec_from_file_location("device_budget", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_nested_spans_charge_their_own_time_and_add_up_to_the_whole():
    db = load_device_budget()
    clock = FakeClock()
    budget = db.Budget(clock)
    with budget.span("other"):
        clock.tick(1.0)
        with budget.span("run data"):
            clock.tick(0.5)
            budget.add("timed runs", 2.0)  # charged inside, as the timed request does
            clock.tick(2.0)
            with budget.span("teardown"):
                clock.tick(0.25)
        with budget.span("checks", whole=True):  # a check's worker: its own phases fold into "checks"
            budget.add("imports", 3.0)
            clock.tick(3.0)
    assert budget.seconds["other"] == pytest.approx(1.0)
    assert budget.seconds["run data"] == pytest.approx(0.5)
    assert budget.seconds["timed runs"] == pytest.approx(2.0)
    assert budget.seconds["teardown"] == pytest.approx(0.25)
    assert budget.seconds["checks"] == pytest.approx(3.0) and budget.seconds.get("imports", 0.0) == 0.0
    assert budget.total() == pytest.approx(clock.now - 100.0)
    shares = budget.shares()
    assert sum(shares.values()) == pytest.approx(1.0) and all(s >= 0 for s in shares.values())


def test_the_worker_start_is_split_by_its_marks_and_the_warm_up_by_the_timed_run():
    db = load_device_budget()
    budget = db.Budget(FakeClock())
    marks = {"jail_started": 10.5, "jailed": 10.6, "setup_started": 12.6, "device_started": 12.7, "device_ready": 13.7}
    db.split_start(budget, 10.0, marks, 14.0)
    assert {p: round(s, 6) for p, s in budget.seconds.items()} == {
        "process start": 0.5, "jail": 0.1, "imports": 2.0, "setup": 0.4, "device init": 1.0}
    budget.add("compile", 5.0)  # the warm-up, charged when it ended
    db.split_warm_up(budget, 5.0, 1.5)
    assert budget.seconds["warm-up run"] == pytest.approx(1.5) and budget.seconds["compile"] == pytest.approx(3.5)
    assert budget.total() == pytest.approx(4.0 + 5.0)


def test_marks_out_of_order_or_missing_charge_the_whole_start_to_setup():
    db = load_device_budget()
    budget = db.Budget(FakeClock())
    db.split_start(budget, 10.0, {"jail_started": 9.0}, 12.0)  # an unjailed worker, or clocks that disagree
    assert dict(budget.seconds) == {"setup": 2.0}
    with pytest.raises(ValueError):
        budget.add("lunch", 1.0)
