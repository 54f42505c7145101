"""One seed derivation (evaluator/training.py `evaluation_seeds`) and one run loop (evaluator/runs.py
`scored_runs`): the same --seed gives `evolve baseline`, the screening and the export's verification
the same seeds; a promotion's pairs run on seeds no screening uses. Cheap: the worker runs are
replaced by a recorder of the seeds each caller asks for (the real runs: test_harness,
test_promotion, test_fresh_workers)."""

from typing import ClassVar

import pytest

import evaluator.runs as runs_module
from evaluator.cascade import timed_runs
from evaluator.data import synthetic_dataset
from evaluator.promotion import measure_pairs
from evaluator.results import Evaluation, RunSample
from evaluator.runs import iter_speedruns, run_speedruns
from evaluator.sandbox.sandboxed_worker import WorkerFailure, WorkerLimits
from evaluator.settings import CascadeSettings, HarnessSettings, PromotionSettings, ScoreSettings
from evaluator.training import SEED_LIMIT, evaluation_seeds

SCORE = ScoreSettings(target=0.5, confidence=0.95)
LIMITS = WorkerLimits()


def harness(seed: int | None) -> HarnessSettings:
    return HarnessSettings(device="cpu", data="synthetic", seed=seed)


@pytest.fixture(scope="module")
def mutant_set(baseline_set):
    source = baseline_set.sources["hyperparams"]
    return baseline_set.with_component("hyperparams", source.replace('"muon_lr": 0.24,', '"muon_lr": 0.3,'))


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(40, 20, seed=1)


class Recorder:
    """Stands in for `fresh_run`: records (side, run, seed, warm-up seed), calls on_warm, returns a sample."""

    def __init__(self, accuracy: float = 0.9, fail_at: int | None = None):
        self.calls: list[tuple[object, int, int, int | None]] = []
        self.accuracy, self.fail_at = accuracy, fail_at

    def __call__(self, component_set, dataset, harness, limits, run, seed, flags, clock_tolerance=0.05, gpu=None,
                 warm_up_seed=None, on_warm=lambda: None) -> RunSample:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise WorkerFailure("broken on purpose", "error")
        self.calls.append((component_set, run, seed, warm_up_seed))
        on_warm()
        return RunSample(run=run, seed=seed, accuracy=self.accuracy, time_seconds=1.0, device_name="test", torch_version="x")

    @property
    def seeds(self) -> list[int]:
        return [seed for _, _, seed, _ in self.calls]

    @property
    def warm_up_seeds(self) -> set[int | None]:
        return {warm for *_, warm in self.calls}


@pytest.fixture
def recorder(monkeypatch):
    recording = Recorder()
    monkeypatch.setattr(runs_module, "fresh_run", recording)
    return recording


def screen(component_set, dataset, settings: HarnessSettings, runs: int, reports: list | None = None) -> Evaluation:
    evaluation = Evaluation(changed=["tta"], status="evaluated")
    report = (lambda *event: reports.append(event)) if reports is not None else (lambda *event: None)
    timed_runs(component_set, dataset, settings, SCORE, CascadeSettings(runs=runs, min_runs=2), None, evaluation, None, report)
    return evaluation


class InProcessRecorder:
    """Stands in for `Speedrun` in `iter_speedruns`: records the warm-up's seed."""

    warm_up_seeds: ClassVar[list[int]] = []

    def __init__(self, *args):
        pass

    def warm_up(self, num_train: int, num_test: int, seed: int = 0) -> None:
        self.warm_up_seeds.append(seed)

    def run(self, train_images, train_labels, test_images, seed: int) -> None:
        return None


def test_the_derivation_is_a_function_of_the_seed_and_stable_in_the_number_of_runs():
    assert evaluation_seeds(3, 4) == evaluation_seeds(3, 4)
    warm_up, seeds = evaluation_seeds(3, 40)
    assert evaluation_seeds(3, 4) == (warm_up, seeds[:4])  # a screening stopped early ran the first seeds
    assert evaluation_seeds(4, 4) != evaluation_seeds(3, 4)
    assert evaluation_seeds(None, 4) != evaluation_seeds(None, 4)  # fresh without a seed
    assert all(0 <= s < SEED_LIMIT for s in [warm_up, *seeds])


def test_promotion_streams_are_apart_from_the_evaluation_stream_and_from_each_other():
    for base in (0, 3, None):
        _, screening = evaluation_seeds(base, 200)
        _, pairs = evaluation_seeds(base, 200, promotion_attempt=1)
        assert all(s % 2 == 0 for s in screening) and all(s % 2 == 1 for s in pairs)  # disjoint by construction
    assert evaluation_seeds(3, 8, promotion_attempt=2) == evaluation_seeds(3, 8, promotion_attempt=2)
    assert evaluation_seeds(3, 8, promotion_attempt=2)[1] != evaluation_seeds(3, 8, promotion_attempt=1)[1]


def test_baseline_screening_and_export_verification_get_the_same_seeds(baseline_set, dataset, recorder, monkeypatch):
    settings = harness(11)
    samples = run_speedruns(baseline_set, dataset, settings, runs=3)
    baseline_seeds, baseline_warm_up = recorder.seeds, recorder.warm_up_seeds
    recorder.calls.clear()
    evaluation = screen(baseline_set, dataset, settings, runs=3)
    assert evaluation.stages[-1].status == "passed" and [s.seed for s in evaluation.samples] == recorder.seeds
    monkeypatch.setattr(runs_module, "Speedrun", InProcessRecorder)
    InProcessRecorder.warm_up_seeds = []
    verified = [seed for seed, _ in iter_speedruns(baseline_set, dataset, settings, runs=3)]

    warm_up, seeds = evaluation_seeds(11, 3)
    assert [s.seed for s in samples] == baseline_seeds == recorder.seeds == verified == seeds
    assert baseline_warm_up == recorder.warm_up_seeds == set(InProcessRecorder.warm_up_seeds) == {warm_up}


def test_promotion_pairs_run_on_seeds_the_screening_never_used(baseline_set, mutant_set, dataset, recorder):
    settings = harness(11)
    screened = {s.seed for s in screen(baseline_set, dataset, settings, runs=5).samples}
    recorder.calls.clear()
    first = measure_pairs(mutant_set, baseline_set, dataset, settings, PromotionSettings(pairs=4), attempt=1)
    assert [s.seed for s in first.candidate_samples] == [s.seed for s in first.incumbent_samples] == evaluation_seeds(11, 4, 1)[1]
    assert not screened & {s.seed for s in first.candidate_samples}
    assert recorder.warm_up_seeds.isdisjoint({None}) and not recorder.warm_up_seeds & screened
    again = measure_pairs(mutant_set, baseline_set, dataset, settings, PromotionSettings(pairs=4), attempt=1)
    later = measure_pairs(mutant_set, baseline_set, dataset, settings, PromotionSettings(pairs=4), attempt=2)
    assert [s.seed for s in again.candidate_samples] == [s.seed for s in first.candidate_samples]  # deterministic per attempt
    assert [s.seed for s in later.candidate_samples] != [s.seed for s in first.candidate_samples]
    unseeded = measure_pairs(mutant_set, baseline_set, dataset, harness(None), PromotionSettings(pairs=4))
    assert all(s.seed % 2 == 1 for s in unseeded.candidate_samples)  # fresh, and still apart from any screening


def test_every_seed_runs_both_sides_in_a_drawn_order(baseline_set, mutant_set, dataset, recorder):
    reports = []
    measured = measure_pairs(mutant_set, baseline_set, dataset, harness(5), PromotionSettings(pairs=16),
                             report=lambda *event: reports.append(event))
    assert reports == [("pair", pair, 16) for pair in range(1, 17)]
    assert len(measured.candidate_samples) == len(measured.incumbent_samples) == 16
    by_pair = [recorder.calls[2 * i: 2 * i + 2] for i in range(16)]
    sides = {id(mutant_set), id(baseline_set)}
    assert all(a[1] == b[1] == i and a[2] == b[2] and {id(a[0]), id(b[0])} == sides for i, (a, b) in enumerate(by_pair))
    assert len({calls[0][0] is mutant_set for calls in by_pair}) == 2  # both sides went first (p = 2**-15 otherwise)


def test_a_worker_failure_ends_the_pairs_with_its_reason_and_the_whole_pairs(baseline_set, dataset, monkeypatch):
    monkeypatch.setattr(runs_module, "fresh_run", Recorder(fail_at=3))
    measured = measure_pairs(baseline_set, baseline_set, dataset, harness(5), PromotionSettings(pairs=4))
    assert measured.error == "broken on purpose" and len(measured.candidate_samples) == len(measured.incumbent_samples) == 1


def test_the_screening_stops_early_and_reports_its_stages(baseline_set, dataset, monkeypatch):
    failing = Recorder(accuracy=0.1)
    monkeypatch.setattr(runs_module, "fresh_run", failing)
    reports = []
    evaluation = screen(baseline_set, dataset, harness(5), runs=5, reports=reports)
    assert [(v.stage, v.status) for v in evaluation.stages] == [("smoke", "passed"), ("timed", "stopped")]
    assert evaluation.stages[-1].message == "stopped after 2 runs: accuracy clearly below the target 0.5000"
    assert reports == [("smoke", None, None), ("timed", 1, 5), ("timed", 2, 5)] and len(failing.calls) == 2
    monkeypatch.setattr(runs_module, "fresh_run", Recorder(fail_at=0))
    evaluation = screen(baseline_set, dataset, harness(5), runs=5)
    assert evaluation.status == "failed" and [(v.stage, v.message) for v in evaluation.stages] == [("smoke", "broken on purpose")]
