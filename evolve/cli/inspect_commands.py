"""`evolve experiments | lineage | show | top`: read the lineage database, and the helpers of every
command that does (status, diff, rescore): one way to open it, print JSON, tables and numbers.

Every command takes --db URL (default sqlite:///evolve.db) and --json; EXPERIMENT (a name or
id) defaults to the most recent experiment. Database problems print one message and exit 1.
The options and their help are declared in evolve/cli/app.py.
"""

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from evolve.cli import output
from evolve.cli.changes import candidate_change, promotion_outcomes, source_before
from evolve.cli.ranking import ranked
from evolve.database import CandidateInfo, DatabaseError
from evolve.database.reader import Reader
from evolve.database.records import DecisionInfo


def console() -> Console:
    return Console(highlight=False)


def fail(message: str) -> NoReturn:
    """The inspection commands' errors (a database that cannot be read) are failures of the work: exit 1."""
    output.fail(message, code=1)


@contextmanager
def opened(url: str) -> Iterator[Reader]:
    """The existing database at url, read-only through the DB-API driver (reader.py: no SQLAlchemy, for start-up
    time); a DatabaseError opening or using it becomes one message and exit 1."""
    try:
        with Reader.open(url) as reader:
            yield reader
    except DatabaseError as e:
        fail(str(e))


def finite(value: Any) -> Any:
    """Strict JSON: an infinite or undefined number (the bound of a single run) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(finite(value), indent=2, default=str, allow_nan=False) + "\n")


def points(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def number(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table in a terminal; aligned plain columns when piped, easy to grep and cut."""
    out = console()
    if out.is_terminal:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="left" if column in ("status", "origin", "component", "verdict") else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        out.print(table)
        return
    out.out(title, highlight=False)
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)]
    for row in [list(columns), *rows]:
        out.out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), highlight=False)


def node_label(c: CandidateInfo, change: str = "", outcome: str = "") -> str:
    """`#7 hyperparams [mutator] gen 3 champion score ... island 1 | epochs 8.0 -> 7.61 | promoted over #3`."""
    parents = f" x #{c.second_parent_id}" if c.second_parent_id else ""
    line = (
        f"#{c.id}{parents} {c.component} [{c.origin}] gen {c.generation} {c.status}"
        f" score {number(c.score)} time {number(c.time_mean)} s acc {points(c.accuracy_mean)} island {c.island}"
    )
    return " | ".join(part for part in (line, change, outcome) if part)


def node_json(c: CandidateInfo, children: list[dict], change: str = "", outcome: str = "") -> dict:
    fields = ("id", "parent_id", "second_parent_id", "component", "origin", "generation", "island", "status",
              "score", "time_mean", "accuracy_mean", "accuracy_lower_bound", "runs")
    return {**c.model_dump(mode="json", include=set(fields)), "change": change, "promotion": outcome or None, "children": children}


def experiments(*, db: str, as_json: bool) -> None:
    """One line per experiment: status, best score, champion time and accuracy, candidates by status."""
    with opened(db) as store:
        lines = store.overview()
    if as_json:
        print_json([line.model_dump(mode="json", exclude={"champion": {"source", "diff"}}) for line in lines])
        return
    out = console()
    if not lines:
        out.print("no experiments yet")
    for line in lines:
        e, champion = line.experiment, line.champion
        counts = ", ".join(f"{n} {status}" for status, n in sorted(line.counts.items())) or "no candidates"
        held = f"champion #{champion.id} {number(champion.time_mean)} s {points(champion.accuracy_mean)}" if champion else "no champion"
        out.out(
            f"{e.name}  {e.status}  best {number(line.best_score)}  {held}  [{counts}]  "
            f"{', '.join(e.components)} from {e.baseline} on {e.device}, started {e.created_at:%Y-%m-%d %H:%M}",
            highlight=False,
        )


def lineage(*, experiment: str | None, candidate: int | None, depth: int | None, db: str, as_json: bool) -> None:
    """The ancestry tree: each candidate's island, status, score, time, accuracy, change and promotion outcome."""

    with opened(db) as store:
        if candidate is not None:
            chain = store.ancestry(candidate)[: None if depth is None else depth + 1]
            roots, children = [chain[-1]], {c.id: [chain[i - 1]] for i, c in enumerate(chain) if i > 0}
            limit = None
            chosen = store.experiment(str(chain[0].experiment_id))
        else:
            chosen = store.experiment(experiment)
            everyone = chain = store.candidates(chosen.id)
            ids = {c.id for c in everyone}
            roots = [c for c in everyone if c.parent_id not in ids]
            children = {}
            for c in everyone:
                if c.parent_id in ids:
                    children.setdefault(c.parent_id, []).append(c)
            limit = depth
        outcomes = promotion_outcomes(store, chosen.id)
        seed_sources = store.seed_sources(chosen.id, required=False)
    known = {c.id: c for c in chain}
    changes = {c.id: candidate_change(c, source_before(c, known, seed_sources)) for c in chain}

    def as_dict(node: CandidateInfo, level: int) -> dict:
        below = [] if limit is not None and level >= limit else children.get(node.id, [])
        return node_json(node, [as_dict(child, level + 1) for child in below], changes[node.id], outcomes.get(node.id, ""))

    trees = [as_dict(root, 0) for root in roots]
    if as_json:
        print_json(trees)
        return
    out = console()
    by_id = {c.id: c for c in [*roots, *(c for group in children.values() for c in group)]}
    label = lambda i: node_label(by_id[i], changes[i], outcomes.get(i, ""))
    if out.is_terminal:
        for tree in trees:
            top = Tree(escape(label(tree["id"])))
            stack = [(top, tree)]
            while stack:
                branch, node = stack.pop()
                for child in node["children"]:
                    stack.append((branch.add(escape(label(child["id"]))), child))
            out.print(top)
        return

    def plain(node: dict, level: int) -> None:
        out.out("  " * level + label(node["id"]), highlight=False)
        for child in node["children"]:
            plain(child, level + 1)

    for tree in trees:
        plain(tree, 0)


def show(*, candidate: int, db: str, as_json: bool) -> None:
    """A candidate's source, diff, cascade verdicts, samples, and the LLM prompt and reply behind it."""

    with opened(db) as store:
        detail = store.detail(candidate)
        compared = store.decisions(candidate_id=candidate)
        outcomes = store.proposals_from(candidate)
    if as_json:
        print_json({**detail.model_dump(mode="json"), "promotion_decisions": [d.model_dump(mode="json") for d in compared],
                    "proposals_from_it": outcomes})
        return
    out = console()
    c = detail.candidate
    section = lambda title: out.rule(escape(title)) if out.is_terminal else out.out(f"== {title}", highlight=False)
    parents = ", ".join(f"#{p}" for p in (c.parent_id, c.second_parent_id) if p is not None) or "none"
    out.out(
        f"candidate #{c.id}: {c.component}, {c.origin}, generation {c.generation}, island {c.island}, parents {parents}, "
        f"inspirations {c.inspiration_ids or 'none'}\n"
        f"status {c.status}, verdict {c.verdict or '-'}, score {number(c.score)}, time {number(c.time_mean)} s, "
        f"accuracy {points(c.accuracy_mean)} (lower bound {points(c.accuracy_lower_bound)}), runs {c.runs or 0}",
        highlight=False,
    )
    if outcomes:
        out.out("proposals from it: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
                + " (near-copies are skipped before evaluation)", highlight=False)
    if c.error:
        out.out(f"error: {c.error}", highlight=False)
    for flag in c.flags:
        out.out(f"flag: {flag}", highlight=False)
    emit_table("cascade", ["stage", "status", "seconds", "message"],
               [(s.stage, s.status, f"{s.seconds:.2f}", s.message) for s in detail.stages])
    emit_table("samples", ["stage", "run", "seed", "accuracy", "time (s)", "device time (s)", "device", "torch", "driver"],
               [(s.stage, str(s.run), str(s.seed), points(s.accuracy), number(s.time_seconds), number(s.device_time_seconds),
                 s.device_name, s.torch_version, s.driver_version or "-") for s in detail.samples])
    for d in compared:
        section(f"promotion decision #{d.id}: #{d.candidate_id} against champion #{d.incumbent_id}, "
                f"{'promoted' if d.promoted else 'not promoted'}")
        print_decision(out, d)
    if c.profile:
        section("profile")
        out.out(json.dumps(c.profile, indent=2), highlight=False)
    section("diff against parent")
    out.out(c.diff or "(no parent, or a parent of another component)", highlight=False)
    section("source")
    out.out(c.source, highlight=False)
    if detail.llm_call:
        call = detail.llm_call
        section(f"LLM call #{call.id}: {call.model} at {call.endpoint or '-'}, {call.tokens_in} tokens in, "
                f"{call.tokens_out} out, {number(call.latency_seconds, 1)} s, cost {number(call.cost)}")
        out.out("-- prompt\n" + call.prompt, highlight=False)
        out.out("-- response\n" + (call.response or f"(none; error: {call.error})"), highlight=False)


def print_decision(out: Console, d: DecisionInfo) -> None:
    """The rule's inputs and verdict: budget, minimum gain, each test with its bound, both sides' samples."""
    x = d.decision
    gain = "-" if d.min_gain_seconds is None else f"{d.min_gain_seconds:.4f} s ({x.get('min_gain_source') or '-'})"
    out.out(f"{d.reason}\nattempt {d.attempt or '-'}, error budget spent {d.alpha_spent:.3g}, minimum gain {gain}, "
            f"accuracy margin {points(x.get('accuracy_margin'))}, branch {x.get('branch') or '-'}", highlight=False)
    tests = x.get("tests") or []
    if tests:
        emit_table("tests", ["test", "estimate", "lower bound", "must exceed", "p", "passed"],
                   [(t["name"], number(as_float(t["estimate"]), 5), number(as_float(t["lower_bound"]), 5),
                     number(as_float(t["threshold"]), 5), f"{as_float(t['pvalue']):.3g}", "yes" if t["passed"] else "no")
                    for t in tests])
    for side in ("candidate", "incumbent"):
        s = x.get(side)
        if s:
            out.out(f"{side} ({'its paired runs' if side == 'candidate' else 'whole record'}): {s['runs']} runs, "
                    f"time {number(s['time_mean'])} s, penalty {number(s.get('penalty'))} s, accuracy {points(s['accuracy_mean'])} "
                    f"[{points(s['accuracy_ci_low'])}, {points(s['accuracy_ci_high'])}], score {number(s['score'])}", highlight=False)
    pairs = list(zip(x.get("candidate_samples") or [], x.get("incumbent_samples") or []))
    emit_table("pairs", ["pair", "seed", "candidate time (s)", "champion time (s)", "candidate acc", "champion acc"],
               [(str(a["run"]), str(a["seed"]), number(a["time_seconds"]), number(b["time_seconds"]), points(a["accuracy"]),
                 points(b["accuracy"])) for a, b in pairs])


def as_float(value: object) -> float:
    return float(value)  # stored infinities come back as the strings "inf" / "-inf"


def top(*, experiment: str | None, k: int, db: str, as_json: bool) -> None:
    """The champion, then the k best candidates by score (evolve/cli/ranking.py says why in that order)."""

    with opened(db) as store:
        best = ranked(store, store.experiment(experiment).id, k)
    if as_json:
        print_json([{**r.candidate.model_dump(mode="json", exclude={"source", "diff"}), "rank": r.rank, "penalty": r.penalty,
                     "note": r.note} for r in best])
        return
    emit_table(
        "top candidates (the champion first: only its lead was confirmed side by side)",
        ["rank", "id", "component", "origin", "gen", "status", "score", "time (s)", "penalty (s)", "accuracy", "lower bound",
         "runs", "note"],
        [(str(r.rank), str(c.id), c.component, c.origin, str(c.generation), c.status, number(c.score), number(c.time_mean),
          number(r.penalty), points(c.accuracy_mean), points(c.accuracy_lower_bound), str(c.runs), r.note)
         for r in best for c in [r.candidate]],
    )
