"""torch.compile inside the jail: inductor's C++ toolchain, its precompiled header (~150 MB) and
its caches all live in the worker's private folder, within the worker's file-size limits.

The slowest test of the sandbox (g++ builds the precompiled header and each kernel; a minute or
two on a busy machine), kept at the smallest scale. It is the only test of the real CUDA path's
`--compile` default going through the sandbox.
"""

import pytest

from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.sandbox import jail
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings


@pytest.mark.skipif(jail.landlock_abi() < 1 or jail.namespaces() is None, reason="no kernel jail here")
def test_compile_passes_smoke_and_timed_inside_the_jail(baseline_set):
    limits = WorkerLimits(setup_seconds=300, warmup_seconds=900, run_seconds=300, memory_bytes=8 << 30)
    cascade = CascadeSettings(runs=2, min_runs=2, limits=limits)
    harness = HarnessSettings(device="cpu", data="synthetic", compile=True, hyperparams={"epochs": 1})
    evaluation = evaluate_candidate(baseline_set, ["tta"], synthetic_dataset(200, 100, seed=3), harness, ScoreSettings(target=0.2), cascade)
    verdicts = {s.stage: (s.status, s.message) for s in evaluation.stages}
    assert verdicts["smoke"][0] == "passed", verdicts["smoke"][1]
    assert verdicts["timed"][0] == "passed", verdicts["timed"][1]
    assert evaluation.status == "evaluated" and len(evaluation.samples) == 2
