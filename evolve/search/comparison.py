"""One promotion attempt in progress: its pairs handed out one job each, so that they run on several
slots at once, and decided as they come back.

The attempt's sequential plan (evaluator/promotion_policy/sequential.py) tests at looks; the pairs
up to the next look are handed out together (as many slots as are free take them), slots with
nothing else to do take later pairs of the series too (a search's last comparisons would otherwise
run a look at a time while the other slots wait), and each pair that completes the series so far
(pairs come back in any order; the tests read them in the series' order) is put to the policy's
stop rule: a look that passes, or a futility stop, ends the attempt there. A pair still running
when the attempt ends is not waited for; its result, when it comes, is dropped (the rest of the
look, and what idle slots took beyond it). The decision itself is the policy's, on the pairs
in the series' order, exactly as when one job measures them all (evaluator/promotion.py
`confirm_promotion`).
"""

from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.promotion_policy.rule import DecisionContext, PromotionDecision, failed_decision
from evaluator.promotion_policy.sequential import SequentialPlan
from evaluator.results import PairedMeasurement, RunSample
from evolve.database.records import PromotionInfo
from evolve.search.executor import PromotionJob


class Comparison:
    """The attempt's pairs: which are handed out, which are back, and the decision once the stop rule or the last look gives it."""

    def __init__(self, promotion: PromotionInfo, template: PromotionJob, policy: PromotionPolicy, context: DecisionContext,
                 plan: SequentialPlan):
        self.promotion, self.template, self.policy, self.context, self.plan = promotion, template, policy, context, plan
        self.candidate_id = template.candidate_id
        self.handed_out = 0  # pairs 0 .. handed_out - 1 are running or back
        self.pairs: dict[int, tuple[RunSample, RunSample]] = {}  # pair index -> (candidate's, incumbent's sample)
        self.tested = 0  # pairs 0 .. tested - 1 were put to the stop rule, in order
        self.failures: dict[int, PairedMeasurement] = {}  # pair index -> its failed measurement
        self.flags: list[str] = []
        self.seconds = 0.0  # device time of the pairs back so far

    def horizon(self) -> int:
        """Pairs that may be handed out now: up to the first look after the pairs tested."""
        return next(look for look in self.plan.looks if look > self.tested)

    def has_job(self, idle_slots: bool = False) -> bool:
        """A pair to hand out: up to the next look, or, for slots that would otherwise idle, up to the last."""
        return self.handed_out < (self.plan.pairs if idle_slots else self.horizon())

    def next_job(self) -> PromotionJob:
        """The next pair of the series, as a job of its own."""
        index = self.handed_out
        self.handed_out += 1
        settings = self.template.promotion.model_copy(update={"pairs": index + 1})
        return self.template.model_copy(update={"first_pair": index, "promotion": settings})

    def add(self, measured: PairedMeasurement) -> PromotionDecision | None:
        """A pair is back: the decision, where the pairs now say enough (or the next pair the rule needs failed), else
        None. A failed pair beyond where the rule stops (one an idle slot took early) changes nothing."""
        self.seconds += measured.seconds
        self.flags += [flag for flag in measured.flags if flag not in self.flags]
        if measured.error is not None or not measured.candidate_samples:
            self.failures.setdefault(measured.first_pair + len(measured.candidate_samples), measured)  # it fails the attempt once the rule reaches it
        for offset, pair in enumerate(zip(measured.candidate_samples, measured.incumbent_samples)):
            self.pairs[measured.first_pair + offset] = pair
        while True:
            if self.tested in self.failures:  # the next pair the rule needs failed: the attempt fails, spends nothing
                failed = self.failures[self.tested].model_copy(update={
                    "candidate_samples": self._samples(0), "incumbent_samples": self._samples(1), "seconds": self.seconds,
                    "flags": self.flags})
                return failed_decision(failed, self.policy.score, self.context)
            if self.tested not in self.pairs:
                return None
            self.tested += 1
            candidate, incumbent = self._samples(0), self._samples(1)
            stopped = self.policy.stop_reason(candidate, incumbent, self.context, self.plan)
            if stopped or self.tested == self.plan.pairs:
                decision = self.policy.decide(candidate, incumbent, self.context, self.plan, stopped)
                decision.flags, decision.seconds = self.flags, self.seconds
                return decision

    def _samples(self, side: int) -> list[RunSample]:
        return [self.pairs[i][side] for i in range(self.tested)]
