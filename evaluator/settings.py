"""Settings of the harness, the score, the cascade and the promotion rule, every field documented.

One module that imports only pydantic (no numpy, torch or scipy), so that loading an experiment's
configuration, for `evolve config show` or `evolve status`, loads none of the machinery.
"""

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from evaluator.sandbox.limits import WorkerLimits
from evaluator.score_defaults import (
    DEFAULT_ACCURACY_STD_FLOOR,
    DEFAULT_CONFIDENCE,
    DEFAULT_PENALTY_BASE,
    DEFAULT_REFERENCE_RUNS,
    DEFAULT_TARGET,
)

# Hyperparameter overrides of each training scale. 'tiny' shrinks the network and batches so a
# CPU finishes a run in seconds; its accuracies say nothing about the full recipe's.
SCALES: dict[str, dict[str, object]] = {
    "full": {},
    "tiny": {"width1": 16, "width2": 32, "width3": 32, "batch_size": 200, "whiten_init_images": 1000, "tta_batch_size": 500},
}


class HarnessSettings(BaseModel):
    device: Literal["cuda", "cpu"] = Field("cuda", description="where to train: cuda (timed speedruns) or cpu (tests)")
    data: str = Field("cifar10", description="'cifar10' (downloaded once through torchvision), 'synthetic', or a .npz path")
    scale: Literal["full", "tiny"] | None = Field(
        None, description="'full' recipe or 'tiny' network for CPU checks; default: full on cuda, tiny on cpu"
    )
    compile: bool | None = Field(None, description="torch.compile the network and Newton-Schulz; default: on for cuda")
    hyperparams: dict[str, float | int | bool] = Field(
        default_factory=dict, description="overrides of HYPERPARAMS keys, applied after the scale's"
    )
    seed: int | None = Field(None, description="base seed of the runs; default: fresh random seeds")

    @field_validator("data")
    @classmethod
    def _data_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("data must be 'cifar10', 'synthetic' or a path to a .npz file")
        return v

    def effective_scale(self) -> str:
        return self.scale or ("full" if self.device == "cuda" else "tiny")

    def effective_compile(self) -> bool:
        return self.device == "cuda" if self.compile is None else self.compile

    def effective_overrides(self) -> dict[str, object]:
        return {**SCALES[self.effective_scale()], **self.hyperparams}


class ScoreSettings(BaseModel):
    target: float = Field(DEFAULT_TARGET, gt=0, le=1, description="accuracy the lower bound must reach (fraction)")
    confidence: float = Field(DEFAULT_CONFIDENCE, gt=0.5, lt=1, description="one-sided confidence of the lower bound")
    penalty_base: float = Field(
        DEFAULT_PENALTY_BASE, gt=1, description="a in the score: a shortfall of s points costs a**s - 1 seconds"
    )
    reference_runs: int = Field(
        DEFAULT_REFERENCE_RUNS, ge=2,
        description="the penalty uses the lower bound at this many runs, so early-stopped and full evaluations compare",
    )
    accuracy_std_floor: float = Field(
        DEFAULT_ACCURACY_STD_FLOOR, ge=0, description="per-run accuracy std assumed at least (prior noise; 0.14 points)"
    )


class CascadeSettings(BaseModel):
    runs: int = Field(5, ge=1, description="most timed runs of a candidate")
    min_runs: int = Field(3, ge=2, description="timed runs before early stopping may stop a candidate")
    clock_tolerance: float = Field(0.05, description="flag a run whose device-event time differs from the parent's by more")
    limits: WorkerLimits = Field(default_factory=WorkerLimits)
    profile: bool = Field(False, description="after the timed runs, one extra profiled run summarized for the prompts")


class RuleSettings(BaseModel):
    """The rule's numbers; part of PromotionSettings."""

    experiment_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="chance that a whole experiment ever promotes a candidate that is not better"
    )
    min_gain_seconds: float | None = Field(
        None, ge=0, description="minimum time gain per run worth promoting; none: min_gain_fraction, else calibrated noise"
    )
    min_gain_fraction: float | None = Field(
        None, ge=0, lt=1, description="minimum time gain as a fraction of the champion's time (used when seconds is unset)"
    )
    default_gain_fraction: float = Field(
        0.01, ge=0, lt=1, description="minimum gain as a fraction of the champion's time when nothing else is set or calibrated"
    )
    accuracy_margin: float = Field(
        0.002, ge=0, lt=1, description="non-inferiority margin: accuracy may be lower than the champion's by at most this"
    )


class PromotionSettings(RuleSettings):
    pairs: int = Field(16, ge=2, description="paired runs of candidate and incumbent on shared fresh seeds (at least what alpha needs)")
    power: float = Field(
        0.8, ge=0, lt=1, description="raise the pairs to what the candidate's screening gain needs for this chance of "
        "confirming it (sign test at the attempt's alpha), up to max_pairs; a candidate that max_pairs could not confirm is "
        "not compared and spends no error budget (evaluator/promotion_policy/policy.py); 0: always `pairs`. The default "
        "since the simulated searches of docs/BENCHMARKS.md (issue 27): with 16 fixed pairs, failed attempts on real but "
        "small gains shrank every later alpha until nothing could be promoted (10,000 candidates: 3-7 true promotions "
        "for 1.5-1.8 M device-s, against 12 for 0.4 M with power sizing, no false champion in either)"
    )
    max_pairs: int = Field(64, ge=2, description="most pairs a comparison sized by `power` may take")
    looks: int = Field(
        8, ge=1, description="the pairs are tested at this many points as they come (about every pairs/looks pairs), and the "
        "comparison stops at the first that passes, the experiment's error rate kept by alpha spending within the attempt "
        "(evaluator/promotion_policy/sequential.py); 1: one test after all the pairs, as for a comparison whose pairs are not "
        "sized by `power`. 8 because every pair (64) saved under "
        "0.5 pairs on average over 4 in the exact operating figures of docs/BENCHMARKS.md, and a look's pairs can run at once "
        "on several slots"
    )
    futility: float = Field(
        0.2, ge=0, lt=1, description="stop a comparison as a loser after any pair when its chance of passing a later look, at "
        "the pair win chance its screening promised, is below this (it cannot raise the error rate; the power sizing counts "
        "its cost); without a promise (power 0) it stops only where no later look can pass. 0: never stop early as a loser"
    )
    queue_limit: int = Field(
        16, ge=1, description="most candidates waiting for a paired comparison; beyond it the worst-scoring is refused at once "
        "(comparisons run one at a time and the best queued goes first, so the rest would only wait to be gated out by the "
        "next champion). At 64 simulated slots an unbounded queue held 55,000 of 83,000 candidates (docs/BENCHMARKS.md, "
        "issue 27)"
    )
    gate_pvalue: float = Field(
        0.2, gt=0, le=1, description="a candidate reaches a paired comparison only when its screening times beat the champion's "
        "record by the minimum gain at this p (one-sided Mann-Whitney; evaluator/promotion_policy/gate.py); 1: the score alone decides"
    )
    clock_tolerance: float = Field(0.05, description="flag a run whose device-event time differs from the parent's by more")
    limits: WorkerLimits = Field(default_factory=WorkerLimits)
