"""The values an evaluation produces: one sample per timed run, and their summary."""

from pydantic import BaseModel, Field


class RunSample(BaseModel):
    """One timed speedrun, raw enough to recompute any score later."""

    run: int
    seed: int
    accuracy: float = Field(description="fraction of test images classified correctly, computed by the harness")
    time_seconds: float = Field(
        description="the scored time: the parent's clock (evaluator/runs.py timed_sample), from handing the run's data to its "
        "worker to the receipt of the whole test logits"
    )
    device_time_seconds: float | None = Field(
        default=None, description="the worker's CUDA-event time of its part of the run, from its receipt of 'go' (data to the "
        "device, training, prediction) to its logits on its host; a check on time_seconds, never scored; None on the CPU"
    )
    device_name: str
    torch_version: str
    driver_version: str | None = None


class Summary(BaseModel):
    """Statistics of a set of runs; accuracies in fractions, times in seconds."""

    runs: int
    accuracy_mean: float
    accuracy_std: float
    accuracy_ci_low: float = Field(description="two-sided confidence interval of the mean accuracy")
    accuracy_ci_high: float
    accuracy_lower_bound: float = Field(description="one-sided lower confidence bound (LCB) of the mean accuracy, these runs")
    scored_lower_bound: float | None = Field(
        default=None, description="the LCB at the reference number of runs, which the score's penalty uses"
    )
    time_mean: float
    time_std: float
    confidence: float
    target: float
    penalty_base: float
    reference_runs: int | None = Field(default=None, description="runs the scored lower bound is computed at")
    accuracy_std_floor: float | None = Field(default=None, description="the std below which no set of runs is believed")
    penalty: float | None = Field(default=None, description="seconds the accuracy shortfall costs: score = -time_mean - penalty")
    score: float = Field(description="-time_mean - penalty")


class StageVerdict(BaseModel):
    """The outcome of one cascade stage and what it cost."""

    stage: str = Field(description="static, contracts, smoke or timed")
    status: str = Field(description="passed, rejected (broke a rule), failed (crashed, hung, bad output) or stopped (early)")
    message: str = ""
    seconds: float = 0.0


class KernelShare(BaseModel):
    name: str
    seconds: float
    share: float = Field(description="fraction of all kernel time in the profiled run")
    calls: int


class ProfileSummary(BaseModel):
    """Top kernels and phase shares of one profiled run."""

    device: str
    kernel_seconds: float = Field(description="total kernel time (device time on a GPU, operator CPU time on the CPU)")
    phases: dict[str, float] = Field(description="phase -> fraction of kernel time")
    top_kernels: list[KernelShare]

    def as_text(self) -> str:
        """The few lines a prompt shows."""
        phases = ", ".join(f"{name} {share:.0%}" for name, share in self.phases.items())
        kernels = "\n".join(f"  {k.share:6.1%}  {k.seconds * 1e3:8.2f} ms  {k.calls:6d}x  {k.name}" for k in self.top_kernels)
        return f"Profile on {self.device}: {self.kernel_seconds * 1e3:.1f} ms of kernels. Phases: {phases}.\nTop kernels:\n{kernels}"


class Evaluation(BaseModel):
    """Everything the evaluator learned about one candidate component set."""

    changed: list[str] = Field(description="the components this candidate replaced")
    status: str = Field(description="rejected, failed or evaluated")
    stages: list[StageVerdict] = Field(default_factory=list)
    samples: list[RunSample] = Field(default_factory=list)
    summary: Summary | None = None
    flags: list[str] = Field(default_factory=list, description="warnings such as clock disagreement")
    profile: ProfileSummary | None = Field(default=None, description="one extra profiled run, when asked for")
    behaviour: dict[str, str] = Field(default_factory=dict, description="component -> fingerprint on the probe inputs (behaviour.py)")

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)


class PairedMeasurement(BaseModel):
    """Both sides' samples on shared seeds, and why the measurement stopped early, if it did."""

    attempt: int = Field(1, description="the promotion attempt whose seed series these pairs ran on")
    first_pair: int = Field(0, description="the index of its first pair in the attempt's series (pairs spread over slots)")
    candidate_samples: list[RunSample] = Field(default_factory=list)
    incumbent_samples: list[RunSample] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    error: str | None = None
    stopped: str | None = Field(default=None, description="why the pairs stopped before the last (the sequential test)")
    seconds: float = 0.0
