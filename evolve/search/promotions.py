"""Promotions: the gate to a paired comparison, the queue of comparisons, their start and their
decision, and the champion change.

Promotion has its own bookkeeping: the attempts that number the error budget (counted in the
database), the minimum gain from the device's calibration, the queue of paired re-measurements
(each stored before it starts, so a killed search redoes it on resume) and the refold of both
sides' records after each decision (evolve/database/decisions.py). What is decided, and on what
evidence, is the promotion policy's (evaluator/promotion_policy/): this module only feeds it.
"""

import time

from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.policy import PromotionPolicy, Standing
from evaluator.promotion_policy.rule import DecisionContext, PromotionDecision
from evaluator.results import PairedMeasurement
from evolve.config import ExperimentConfig
from evolve.database import decisions as promotion_records
from evolve.database.records import PromotionInfo
from evolve.database.store import Store
from evolve.llm.client import Budget
from evolve.search.comparison import Comparison
from evolve.search.executor import PromotionJob
from evolve.search.panel import Panel
from evolve.search.promotion_queue import PromotionQueue
from evolve.search.state import SearchState

CALIBRATION_REFRESH_SECONDS = 60.0


class Promotions:
    """One paired comparison at a time, its pairs spread over the free slots; owns the queue and the one in progress."""

    def __init__(self, config: ExperimentConfig, store: Store, experiment_id: int, state: SearchState, policy: PromotionPolicy,
                 budget: Budget, panel: Panel):
        self.config, self.store, self.experiment_id, self.state = config, store, experiment_id, state
        self.policy, self.budget, self.panel = policy, budget, panel
        self.queue = PromotionQueue(config.promotion.queue_limit)  # best screening score first (promotion_queue.py)
        self._gated_against: tuple[int | None, int] | None = None  # (champion, its record's samples) the queue was last gated at
        self.comparison: Comparison | None = None  # the attempt in progress (comparison.py)
        self._noise: tuple | None = None  # (champion id, when read, its device's calibrated time noise)
        self._add(store.promotions(experiment_id, "queued"))

    def due(self, idle_slots: bool = False) -> bool:
        """A pair can be handed out: of the comparison in progress (`idle_slots`: beyond its next look, for slots
        with nothing else to do), or of the next queued one."""
        return self.comparison.has_job(idle_slots) if self.comparison is not None else bool(self.queue)

    def queued(self, candidate_id: int) -> None:
        """The candidate's promotion was queued in the database (with its evaluation's result): add it."""
        self._add(self.store.promotions(self.experiment_id, "queued", candidate_id=candidate_id))

    def _add(self, promotions: list[PromotionInfo]) -> None:
        """Into the queue by score; what does not fit (`promotion.queue_limit` better ones queued) refused at once."""
        rows = self.state.index.rows
        dropped = [d for p in promotions for d in self.queue.add(p, rows[p.candidate_id].score)]
        self.store.refuse_promotions([p.id for p in dropped])

    def _gate_queue(self) -> None:
        """Gate the queue again where the champion or its record changed since it was last gated: the best queued goes
        first, so after a champion change most of the others no longer score above it; they are refused in one write
        instead of one by one as they come up (FIFO spent the error budget in arrival order)."""
        champion = self.state.champion
        key = (champion.id, len(self.state.champion_record.samples)) if champion is not None else (None, 0)
        if key == self._gated_against:
            return
        self._gated_against = key
        refused = self.queue.remove(lambda promotion: self._refusal(promotion.candidate_id) is not None)
        self.store.refuse_promotions([p.id for p in refused])
        if refused:
            self.panel.event(f"{len(refused)} queued comparison(s) refused: no longer above champion #{key[0]}")

    def _refusal(self, candidate_id: int) -> str | None:
        """Why the candidate is no longer worth a comparison with the champion; None where it still is."""
        if self.state.champion is None or candidate_id == self.state.champion.id:
            return "no champion to compare with" if self.state.champion is None else "it is the champion"
        candidate = self.state.index.rows[candidate_id]
        standing = Standing(score=candidate.score, accuracy_lower_bound=candidate.accuracy_lower_bound)
        return self.gate(standing, [s.time_seconds for s in self.state.record(candidate_id)])

    def ensure_first_champion(self) -> None:
        """A search killed between the seed's evaluation and its crowning: crown the best now."""
        best = self.state.index.best()
        if self.state.champion is None and best is not None:
            self.crown_first(int(best.origin))

    def crown_first(self, candidate_id: int) -> None:
        self.store.record_champion(self.experiment_id, candidate_id, None, {"reason": "the first evaluated candidate"})
        self.state.crown(candidate_id)
        self.panel.champion_changed(self.state)

    def minimum_gain(self) -> float:
        """The champion's minimum gain: a setting, else its device's calibration, else the default. The
        calibration is read again for a new champion and at most every CALIBRATION_REFRESH_SECONDS
        (`evolve calibrate` may run beside a search), not for every evaluation."""
        champion, now, cached = self.state.champion, time.monotonic(), self._noise
        if cached is None or cached[0] != champion.id or now - cached[1] > CALIBRATION_REFRESH_SECONDS:
            device = promotion_records.device_of(self.store, champion.id)
            calibration = promotion_records.latest_calibration(self.store, device) if device else None
            cached = self._noise = (champion.id, now, calibration.time_noise_seconds if calibration else None)
        return self.policy.minimum_gain(champion.time_mean or 0.0, cached[2])[0]

    def gate(self, candidate: Standing, candidate_times: list[float]) -> str | None:
        """None where the candidate is worth a paired comparison with the champion, else why not."""
        if self.state.champion is None:
            return "no champion"
        return self.policy.gate(candidate, candidate_times, self.state.champion_record, self.minimum_gain())

    def next_job(self) -> PromotionJob | None:
        """The next pair of the comparison in progress, or the first of the next queued one (stored as started); None
        where the queued one is no longer worth a comparison."""
        if self.comparison is not None:
            return self.comparison.next_job()
        self._gate_queue()
        if not self.queue:
            return None
        promotion = self.queue.pop()
        champion, candidate = self.state.champion, self.state.index.rows[promotion.candidate_id]
        times = [s.time_seconds for s in self.state.record(candidate.id)]
        context = self._context()
        pairs, sizing = self.policy.pairs_for_candidate(context, times, self.state.champion_record)
        # the promise the pairs were sized for: the sequential test's looks and futility stop are judged at it
        context.win_chance = self.policy.win_chance(context, times, self.state.champion_record)
        if pairs is None:
            self.store.finish_promotion(promotion.id, None, [], [], False, {"reason": sizing}, 0.0)
            self.panel.event(f"#{candidate.id} scored above champion #{champion.id}, but {sizing}")
            return None
        self.store.start_promotion(promotion.id)  # before the measurement: a killed search redoes it on resume
        sets = self.state.requests.sets([candidate.id, champion.id])
        promotion_settings = self.config.promotion
        template = PromotionJob(
            candidate_id=candidate.id, incumbent_id=champion.id,
            candidate_set=ComponentSet(sources=sets[candidate.id]), incumbent_set=ComponentSet(sources=sets[champion.id]),
            harness=self.config.harness, score=self.config.score,
            promotion=promotion_settings.model_copy(update={"pairs": pairs, "limits": self.state.run_limits(promotion_settings.limits)}),
            context=context,
        )
        plan = self.policy.plan(context, pairs)
        self.panel.event(f"#{candidate.id} scored above champion #{champion.id}: paired re-measurement (at most {pairs} pairs, "
                         f"tested at {len(plan.looks)} look(s), attempt {context.attempt}, alpha {context.alpha:.2g})")
        self.comparison = Comparison(promotion, template, self.policy, context, plan)
        return self.comparison.next_job()

    def _context(self) -> DecisionContext:
        attempt = promotion_records.attempts_made(self.store, self.experiment_id) + 1
        self.minimum_gain()  # the calibration of this champion's device, read if it is not yet
        return self.policy.context(attempt, self.state.champion.time_mean or 0.0, self._noise[2], self.state.champion_record.samples)

    def done(self, candidate_id: int, measured: PairedMeasurement) -> float | None:
        """A pair is back. Where it decides the comparison: the decision stored, and the slot-seconds of all its pairs
        returned (the estimate's cost of a promotion); else None. A pair of a comparison already decided is dropped."""
        self.budget.add_gpu_seconds(measured.seconds)
        comparison = self.comparison
        if comparison is None or comparison.candidate_id != candidate_id or comparison.context.attempt != measured.attempt:
            return None  # the rest of a look its comparison did not need
        decision = comparison.add(measured)
        if decision is None:
            return None
        self.comparison = None
        self._decided(comparison.promotion, candidate_id, decision)
        return decision.seconds

    def _decided(self, promotion: PromotionInfo, candidate_id: int, decision: PromotionDecision) -> None:
        """Store the decision first (a decision lost to a crash would hand the next attempt too much alpha),
        then the promotion, both sides' refolded records, and the champion."""
        champion = self.state.champion
        promoted = decision.promoted and champion is not None
        if champion is not None:
            promotion_records.record_decision(self.store, self.experiment_id, candidate_id, champion.id, decision)
        self.store.finish_promotion(
            promotion.id, champion.id if champion else None, decision.candidate_samples, decision.incumbent_samples, promoted,
            decision.model_dump(exclude={"candidate_samples", "incumbent_samples"}), decision.seconds,
        )
        if champion is not None:
            for side in (candidate_id, champion.id):  # one record per candidate: all its samples make its statistics
                promotion_records.refresh_record(self.store, side, self.config.score, self.state.record(side))
                self.state.refresh(side)
        if promoted:
            self.state.crown(candidate_id)
            self.panel.event(f"#{candidate_id} is the new champion: {decision.reason}")
        else:
            if champion is not None:
                self.state.crown(champion.id)  # its record grew: its statistics and times follow
            self.panel.event(f"#{candidate_id} not promoted: {decision.reason}")
        self.panel.champion_changed(self.state)
