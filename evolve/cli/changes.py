"""What a candidate changed and how its promotion went, in a few words for the lineage views.

`change_summary` turns a unified diff into "epochs 8.0 -> 7.61" (or the changed line, shortened),
and prefers a one-line description when one is stored (the LLM's summary of its change).
`promotion_outcomes` reads the champion history. Both are the single places the lineage views
take these from, so that richer stored data (per-candidate descriptions, promotion decisions)
plugs in here.
"""

import difflib
import re
from typing import TYPE_CHECKING

from evolve.database import CandidateInfo

if TYPE_CHECKING:
    from evolve.database.reader import Reader
    from evolve.database.store import Store

TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|[A-Za-z_][A-Za-z_0-9]*|-?\d+\.?\d*(?:e-?\d+)?|\S")
LABEL = re.compile(r"^[\"']?[A-Za-z_][A-Za-z_0-9]*[\"']?$")
WIDTH = 80


def changed_pairs(diff: str) -> list[tuple[str, str]]:
    """(removed, added) line pairs of a unified diff; a line without a partner pairs with ''."""
    pairs, removed, added = [], [], []

    def flush() -> None:
        for i in range(max(len(removed), len(added))):
            pairs.append((removed[i] if i < len(removed) else "", added[i] if i < len(added) else ""))
        removed.clear()
        added.clear()

    for line in diff.splitlines():
        if line.startswith(("---", "+++", "@@")):
            flush()
        elif line.startswith("-"):
            if added:
                flush()
            removed.append(line[1:])
        elif line.startswith("+"):
            added.append(line[1:])
        else:
            flush()
    flush()
    return [(a, b) for a, b in pairs if a.strip() != b.strip()]


def token_change(before: str, after: str) -> str:
    """`epochs 8.0 -> 7.61`: the differing stretch of two lines, labelled by the line's first name."""
    before, after = before.split("#")[0], after.split("#")[0]
    old, new = list(TOKEN.finditer(before)), list(TOKEN.finditer(after))
    label = next((t.group().strip("\"'") for t in old if LABEL.match(t.group())), "")
    parts = []
    matcher = difflib.SequenceMatcher(a=[t.group() for t in old], b=[t.group() for t in new], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        was = before[old[i1].start():old[i2 - 1].end()] if i2 > i1 else "(none)"
        now = after[new[j1].start():new[j2 - 1].end()] if j2 > j1 else "(none)"
        parts.append(f"{was} -> {now}")
    return (f"{label} " if label else "") + ", ".join(parts) if parts else ""


def change_summary(diff: str, description: str | None = None) -> str:
    """A short line saying what changed: the description when given, else from the diff."""
    if description and description.strip():
        return shorten(" ".join(description.split()))
    pairs = changed_pairs(diff)
    if not pairs:
        return ""
    changes = []
    for before, after in pairs:
        if before.strip() and after.strip():
            changes.append(token_change(before, after) or after.strip())
        elif after.strip():
            changes.append("+ " + after.strip())
        else:
            changes.append("- " + before.strip())
    text = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more line(s)" if len(changes) > 3 else "")
    return shorten(text)


def shorten(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def promotion_outcomes(store: "Store | Reader", experiment_id: int) -> dict[int, str]:
    """candidate id -> 'first champion', 'promoted over #3', or 'not promoted' (measured against the
    champion but not confirmed); candidates never re-measured are absent."""
    outcomes: dict[int, str] = {}
    for change in store.champion_history(experiment_id):
        outcomes[change.candidate_id] = "first champion" if change.incumbent_id is None else f"promoted over #{change.incumbent_id}"
    for candidate_id in store.samples_by_candidate(experiment_id, stages=("confirm",)):
        outcomes.setdefault(candidate_id, "not promoted")
    return outcomes


def candidate_change(candidate: CandidateInfo, before: str | None = None) -> str:
    """The change of one candidate: its stored diff against the parent, else a diff against `before`
    (the text its component had in the parent's set, for a parent that changed another component)."""
    if candidate.origin == "seed":
        return ""
    diff = candidate.diff or ""
    if not diff.strip() and before is not None:
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), candidate.source.splitlines(keepends=True)))
    return change_summary(diff)


def source_before(candidate: CandidateInfo, by_id: dict[int, CandidateInfo], seed_sources: dict[str, str]) -> str | None:
    """The text of the candidate's component in its parent's full set: the latest ancestor that
    changed it, else the seed set's."""
    parent = by_id.get(candidate.parent_id) if candidate.parent_id is not None else None
    while parent is not None:
        if parent.origin != "seed" and parent.component == candidate.component:
            return parent.source
        parent = by_id.get(parent.parent_id) if parent.parent_id is not None else None
    return seed_sources.get(candidate.component)
