"""`evolve rescore`: every candidate's score recomputed from its stored samples with other parameters.
Its own module because the statistics load numpy, which the other inspection commands never need.
The options and their help are declared in evolve/cli/app.py."""

from evaluator.statistics import summarize
from evolve.cli.inspect_commands import emit_table, number, opened, points, print_json
from evolve.database.decisions import RECORD_STAGES


def rescore(*, experiment: str | None, a: float, target: float, confidence: float, k: int | None, db: str,
            as_json: bool) -> None:
    """Recompute every candidate's score from its raw timed samples (screening and confirmations); the
    stored scores stay as they are, this only prints the new ranking."""
    with opened(db) as store:
        chosen = store.experiment(experiment)
        samples = store.samples_by_candidate(chosen.id, stages=RECORD_STAGES)  # screening and confirmations: the record
        candidates = {c.id: c for c in store.candidates(chosen.id)}
    rows = []
    for candidate_id, runs in samples.items():
        summary = summarize(runs, confidence=confidence, target=target, penalty_base=a)
        rows.append({"id": candidate_id, "status": candidates[candidate_id].status,
                     "stored_score": candidates[candidate_id].score, **summary.model_dump()})
    rows.sort(key=lambda r: (-r["score"], r["id"]))
    rows = rows[:k]
    if as_json:
        print_json({"experiment": chosen.name, "a": a, "target": target, "confidence": confidence, "candidates": rows})
        return
    emit_table(
        f"{chosen.name} rescored: a={a:g}, target {points(target)}, confidence {confidence:g}",
        ["rank", "id", "status", "runs", "time (s)", "accuracy", "lower bound", "stored score", "new score"],
        [(str(i + 1), str(r["id"]), r["status"], str(r["runs"]), number(r["time_mean"]), points(r["accuracy_mean"]),
          points(r["accuracy_lower_bound"]), number(r["stored_score"]), number(r["score"])) for i, r in enumerate(rows)],
    )
