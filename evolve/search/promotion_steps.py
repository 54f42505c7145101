"""The loop's champions: the first one, the gate to a paired comparison, the comparison's start and
its decision, and the champion change.

Part of the evolution loop (loop.py), split from it because promotion has its own bookkeeping:
the attempts that number the error budget, the minimum gain from the device's calibration, the
queue of paired re-measurements (stored before each starts) and the refold of both sides' records
after each decision (evolve/database/decisions.py).
"""

import time

from evaluator.component_set import ComponentSet
from evaluator.promotion import PromotionDecision
from evaluator.promotion_policy.gate import better_score, screening_pvalue, worth_comparing
from evaluator.promotion_policy.rule import DecisionContext, attempt_alpha, branch_of, minimum_gain, pairs_for
from evaluator.results import RunSample
from evolve.database import decisions as promotion_records
from evolve.database.records import CandidateInfo
from evolve.database.status import champion_line, experiment_status
from evolve.search.executor import PromotionJob
from evolve.search.index import index_row

CALIBRATION_REFRESH_SECONDS = 60.0


class PromotionSteps:
    """Mixed into EvolutionLoop: its champion and promotion half."""

    def _start_promotion(self, promotion) -> None:
        champion, candidate = self.champion, self.index.rows[promotion.candidate_id]
        times = [s.time_seconds for s in promotion_records.record_samples_of(self.store, candidate.id)]
        if champion is None or champion.id == candidate.id or not self._beats(candidate, champion, times):
            reason = "the champion changed since it was queued, and it no longer scores above it"
            self.store.finish_promotion(promotion.id, None, [], [], False, {"reason": reason}, 0.0)
            return
        context = self._decision_context(champion)
        pairs = max(self.promotion.pairs, pairs_for(context.alpha))  # fewer pairs can never reach the attempt's alpha
        self.store.start_promotion(promotion.id)  # before the measurement: a killed search redoes it on resume
        sets = self.requests.sets([candidate.id, champion.id])
        job = PromotionJob(
            candidate_id=candidate.id,
            incumbent_id=champion.id,
            candidate_set=ComponentSet(sources=sets[candidate.id]),
            incumbent_set=ComponentSet(sources=sets[champion.id]),
            harness=self.config.harness,
            score=self.config.score,
            promotion=self.promotion.model_copy(update={"pairs": pairs, "limits": self._limits(self.promotion.limits)}),
            context=context,
        )
        self.progress.event(f"#{candidate.id} scored above champion #{champion.id}: paired re-measurement ({pairs} pairs, "
                            f"attempt {context.attempt}, alpha {context.alpha:.2g})")
        self.promotion_running = promotion
        future = self.executor.submit(job)
        self.running[future] = ("promotion", candidate.id)
        self.started[future] = time.monotonic()

    def _ensure_first_champion(self) -> None:
        """A search killed between the seed's evaluation and its crowning: crown the best now."""
        best = self.index.best()
        if self.champion is None and best is not None:
            self.store.record_champion(self.experiment.id, int(best.origin), None, {"reason": "the first evaluated candidate"})
            self._set_champion(int(best.origin))

    def _min_gain(self, champion: CandidateInfo) -> tuple[float, str]:
        """The promotion's minimum gain: a setting, else the champion's device's calibration, else the default.
        The calibration is read again for a new champion and at most every CALIBRATION_REFRESH_SECONDS
        (`evolve calibrate` may run beside a search), not for every evaluation."""
        now = time.monotonic()
        cached = self._noise
        if cached is None or cached[0] != champion.id or now - cached[1] > CALIBRATION_REFRESH_SECONDS:
            device = promotion_records.device_of(self.store, champion.id)
            calibration = promotion_records.latest_calibration(self.store, device) if device else None
            cached = self._noise = (champion.id, now, calibration.time_noise_seconds if calibration else None)
        return minimum_gain(self.promotion, champion.time_mean or 0.0, cached[2])

    def _decision_context(self, champion: CandidateInfo) -> DecisionContext:
        attempt = promotion_records.attempts_made(self.store, self.experiment.id) + 1
        gain, source = self._min_gain(champion)
        record = [RunSample.model_validate(s.model_dump()) for s in promotion_records.record_samples_of(self.store, champion.id)]
        return DecisionContext(attempt=attempt, alpha=attempt_alpha(self.promotion.experiment_alpha, attempt), min_gain_seconds=gain,
                               min_gain_source=source, accuracy_margin=self.promotion.accuracy_margin, incumbent_record=record)

    def _beats(self, candidate, champion: CandidateInfo, candidate_times: list[float]) -> bool:
        """Worth a paired comparison (evaluator/promotion_policy/gate.py): a screening score above the champion's record
        by the minimum gain and, where the champion reaches the target, screening times that beat its
        record's at promotion.gate_pvalue. `candidate` is anything with score and accuracy_lower_bound
        (a candidate, an index row, a Summary); `candidate_times` are its screening runs."""
        return self._gate(candidate, champion, candidate_times) is None

    def _gate(self, candidate, champion: CandidateInfo, candidate_times: list[float]) -> str | None:
        """None where the candidate passes the gate, else why not (shown when only the time test stopped it)."""
        if candidate.score is None or champion.score is None:
            return None if candidate.score is not None else "no score"
        gain, _ = self._min_gain(champion)
        if not better_score(candidate.score, champion.score + gain, candidate.accuracy_lower_bound or 0, champion.accuracy_lower_bound or 0):
            return "its score is not above the champion's by the minimum gain"
        if self.champion_branch != "time" or not self.champion_times or not self.champion_confirmed:
            return None  # a record of one worker's screening runs may be lucky as a whole (evaluator/promotion_policy/gate.py)
        if worth_comparing(candidate_times, self.champion_times, gain, self.promotion.gate_pvalue):
            return None
        pvalue = screening_pvalue(candidate_times, self.champion_times, gain)
        return (f"scores above champion #{champion.id}, but its {len(candidate_times)} screening times do not beat the "
                f"champion's {len(self.champion_times)} by the minimum gain {gain:.4f} s (p = {pvalue:.2f} > "
                f"promotion.gate_pvalue {self.promotion.gate_pvalue:g}): not compared")

    def _promotion_done(self, candidate_id: int, decision: PromotionDecision) -> None:
        self.budget.add_gpu_seconds(decision.seconds)
        promotion, self.promotion_running = self.promotion_running, None
        champion = self.champion
        promoted = decision.promoted and champion is not None
        if champion is not None:  # first: a decision lost to a crash would hand the next attempt too much alpha
            promotion_records.record_decision(self.store, self.experiment.id, candidate_id, champion.id, decision)
        self.store.finish_promotion(
            promotion.id, champion.id if champion else None, decision.candidate_samples, decision.incumbent_samples, promoted,
            decision.model_dump(exclude={"candidate_samples", "incumbent_samples"}), decision.seconds,
        )
        if champion is not None:
            for side in (candidate_id, champion.id):  # one record per candidate: all its samples make its statistics
                promotion_records.refresh_record(self.store, side, self.config.score)
                self.requests.forget(side)
                self.index.add(index_row(self.store.candidate(side)))
        if promoted:
            self._set_champion(candidate_id)
            self.progress.event(f"#{candidate_id} is the new champion: {decision.reason}")
        else:
            if champion is not None:
                self._set_champion(champion.id)  # its record grew: its statistics and times follow
            self.progress.event(f"#{candidate_id} not promoted: {decision.reason}")

    def _set_champion(self, candidate_id: int) -> None:
        if self.champion is not None and self.champion.id != candidate_id:
            self.index.set_status(self.champion.id, "evaluated")
        self.index.set_status(candidate_id, "champion")
        self.champion = self.store.candidate(candidate_id)
        # early stopping compares with the champion's whole record: screening and every confirmation
        record = promotion_records.record_samples_of(self.store, candidate_id)
        self.champion_times = [s.time_seconds for s in record]
        self.champion_confirmed = any(s.stage == "confirm" for s in record)
        self.champion_branch = branch_of([s.accuracy for s in record], self.config.score) if record else "accuracy"
        if self.stats.champion_id != self.champion.id:
            self.stats.champion_history = champion_line(experiment_status(self.store, self.experiment).champions)
        self.stats.champion_id = self.champion.id
        self.stats.champion_time = self.champion.time_mean
        self.stats.champion_accuracy = self.champion.accuracy_mean
