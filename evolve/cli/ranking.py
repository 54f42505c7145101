"""The ranking `evolve top` and the final table of `evolve start` print.

The champion comes first: it is the only candidate whose lead was confirmed side by side.
Every other candidate follows by score, with a note that says why a higher score does not make
it champion (it lost its paired comparison, or it was only screened), and the penalty shown
apart from the time, so that "score -1000.6" reads as "0.6 s, and 1000 s for missing the target".
"""

from typing import TYPE_CHECKING

from pydantic import BaseModel

from evolve.database import CandidateInfo
from evolve.database.reader import reading

if TYPE_CHECKING:
    from evolve.database.reader import Reader
    from evolve.database.store import Store


class RankedCandidate(BaseModel):
    rank: int
    candidate: CandidateInfo
    penalty: float | None
    note: str


def penalty_of(c: CandidateInfo) -> float | None:
    if c.summary and c.summary.get("penalty") is not None:
        return float(c.summary["penalty"])
    if c.score is None or c.time_mean is None:
        return None
    return -c.score - c.time_mean


def ranked(store: "Store | Reader", experiment_id: int, k: int) -> list[RankedCandidate]:
    with reading(store) as reader:
        champion = reader.current_champion(experiment_id)
        lost = reader.lost_comparisons(experiment_id)
        others = [c for c in reader.top(experiment_id, k + 1) if champion is None or c.id != champion.id]
    ordered = ([champion] if champion is not None else []) + others
    rows = []
    for rank, c in enumerate(ordered[:k], 1):
        if champion is not None and c.id == champion.id:
            note = "champion"
        elif c.id in lost:
            d = lost[c.id]
            note = f"lost its paired comparison with #{d.incumbent_id} (attempt {d.attempt or '-'})"
        elif champion is not None and c.score is not None and champion.score is not None and c.score > champion.score:
            note = "screened only: not above the champion by the minimum gain, or not compared yet"
        else:
            note = ""
        rows.append(RankedCandidate(rank=rank, candidate=c, penalty=penalty_of(c), note=note))
    return rows
