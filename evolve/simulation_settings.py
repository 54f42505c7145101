"""The simulation's settings (`[simulation]` in the TOML): the landscape, the noise and the device costs.

Only pydantic is imported, so that loading a configuration loads nothing else. Every number says
where it comes from: a measurement (with its source) or a stated assumption.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LandscapeSettings(BaseModel):
    """The hidden truth of every component set (landscape.py).

    Each line of a component module that the baseline's module lacks is a site with an effect drawn
    from a hash of (landscape seed, component, line): neutral, helpful (it removes a share of the
    time above the floor), harmful (it adds to it) or broken (the network no longer learns). A set's
    true time is floor + (baseline - floor) * exp(sum of the sites' log-effects + interactions), so
    the same edit gains less the nearer the set is to the floor; its accuracy is the baseline's plus
    the sites' accuracy effects."""

    model_config = ConfigDict(extra="forbid")

    baseline_time_seconds: float = Field(
        3.83, gt=0, description="true time of the shipped baseline set: airbench94 on an NVIDIA A100 (3.83 s, its README)")
    baseline_accuracy: float = Field(
        0.942, gt=0, le=1, description="true accuracy of the shipped baseline set: assumed 94.2 %, above the 94 % target by "
        "1.4 per-run stds so that the search works on time (airbench94 reports 94.01 %, which sits on the target)")
    floor_time_seconds: float = Field(
        2.0, gt=0, description="the time no set goes below (assumed: below the 2.59 s 94 % record on an A100); helpful "
        "edits remove shares of the time above it, so returns diminish near it")
    helpful_share: float = Field(0.05, ge=0, le=1, description="share of new lines that help (assumed: a few)")
    harmful_share: float = Field(0.35, ge=0, le=1, description="share of new lines that slow the run (assumed)")
    broken_share: float = Field(
        0.03, ge=0, le=1, description="share of new lines that break learning: accuracy at chance (the cascade's early stop)")
    helpful_log_gain: float = Field(
        0.05, gt=0, description="mean of the exponential share of the time above the floor one helpful line removes (log scale)")
    harmful_log_loss: float = Field(
        0.08, gt=0, description="mean of the exponential share of the time above the floor one harmful line adds (log scale)")
    accuracy_effect_mean: float = Field(
        -0.0005, description="mean accuracy change of a helpful or harmful line (fraction): edits cost a little on average")
    accuracy_effect_std: float = Field(0.001, ge=0, description="std of a helpful or harmful line's accuracy change (fraction)")
    interaction_share: float = Field(
        0.1, ge=0, le=1, description="share of pairs of new lines (in any components) that interact")
    interaction_log_std: float = Field(
        0.03, ge=0, description="std of an interacting pair's log-effect on the time above the floor")
    chance_accuracy: float = Field(0.1, gt=0, le=1, description="accuracy of a broken set: chance on CIFAR-10's ten classes")
    null: bool = Field(
        False, description="A/A landscape: every effect is zero, every set has the baseline's truth (a false champion check)")

    @model_validator(mode="after")
    def _shares(self) -> "LandscapeSettings":
        if self.helpful_share + self.harmful_share + self.broken_share > 1:
            raise ValueError("helpful_share + harmful_share + broken_share must be at most 1 (the rest is neutral)")
        if self.floor_time_seconds >= self.baseline_time_seconds:
            raise ValueError("floor_time_seconds must be below baseline_time_seconds")
        return self


class NoiseSettings(BaseModel):
    """How one timed run's sample scatters around its set's truth (noise.py)."""

    model_config = ConfigDict(extra="forbid")

    accuracy_std: float = Field(
        0.0014, ge=0, description="per-run accuracy std (fraction): 0.14 points, airbench94 on CIFAR-10 (its paper, "
        "Jordan 2024, over many runs)")
    time_noise_fraction: float = Field(
        0.01, ge=0, description="per-run relative time noise within one process: chosen 1 %, about what a quiet GPU's "
        "speedrun timings scatter; with the worker offset the total per run is 2.7 %, which matches the fresh-worker "
        "A/A scatter of docs/BENCHMARKS.md (medians of 10 paired differences scatter 0.026 s in 1.8 s runs)")
    worker_offset_fraction: float = Field(
        0.025, ge=0, description="std of a worker process's relative speed offset, drawn afresh for every run (every "
        "timed run is a fresh worker): docs/BENCHMARKS.md 'A worker has a speed of its own' measured 0.06-0.18 s between "
        "two workers in 1.6-1.9 s runs on the CPU; 2.5 % is the share the fresh-worker scatter above leaves room for")
    slow_host_probability: float = Field(
        0.02, ge=0, le=1, description="chance that a job lands on a slow host (assumed: a busy neighbour, throttling); "
        "all its runs, both sides of a promotion alike, are slowed")
    slow_host_factor: float = Field(1.3, ge=1, description="a slow host's time factor (assumed)")


class DeviceCosts(BaseModel):
    """Simulated device seconds of the cascade's stages beside the timed runs themselves."""

    model_config = ConfigDict(extra="forbid")

    contracts_seconds: float = Field(2.0, ge=0, description="the CPU contract tests of a candidate (assumed)")
    worker_seconds: float = Field(
        5.0, ge=0, description="start and warm-up of one fresh worker before its timed run (assumed: process, CUDA context, "
        "one untimed warm-up run)")


class SimulationSettings(BaseModel):
    """The simulated executor (`executor = "simulated"`, evolve/simulation): nothing is trained, every result is drawn."""

    model_config = ConfigDict(extra="forbid")

    slots: int = Field(1, ge=1, description="simulated jobs in flight at once (GPUs of the simulated cluster)")
    proposer: Literal["simulated", "configured"] = Field(
        "simulated", description="who proposes: simulated (evolve/simulation/proposer.py: thousands a minute; the "
        "landscape decides each edit's effect) or configured (the built-in mutator or the LLM, as without simulation: "
        "real edits, about 6 a second from the mutator on 2 CPU cores)")
    wall_seconds_per_device_second: float = Field(
        0.0, ge=0, description="0: virtual time, a result is handed back as soon as every slot is busy (or the loop waits "
        "for one), as fast as the loop goes; above 0: a simulated device second takes this many wall seconds, so the "
        "slots' idle share measures what the loop and the database cost a cluster (evolve/simulation/clock.py)")
    sites_per_component: int = Field(
        20, ge=1, description="simulated sites per component the simulated proposer edits (like a module's constants)")
    landscape_seed: int = Field(0, description="seed of the landscape: the same seed and set give the same truth")
    noise_seed: int = Field(0, description="seed of the run noise: the same seed and job order give the same samples")
    landscape: LandscapeSettings = Field(default_factory=LandscapeSettings, description="the hidden truth of every set")
    noise: NoiseSettings = Field(default_factory=NoiseSettings, description="the scatter of one run around the truth")
    costs: DeviceCosts = Field(default_factory=DeviceCosts, description="device seconds beside the timed runs")
