"""Strict parsing of an LLM's reply into a new component source, and diffs for storage.

A reply takes one of two forms:

- SEARCH/REPLACE blocks against the parent's source (as in aider and OpenEvolve):

      <<<<<<< SEARCH
      lines copied exactly from the parent
      =======
      the lines that replace them
      >>>>>>> REPLACE

  The blocks may sit inside code fences and between prose. Each marker is a line of its own.
- a full new module in exactly one ```python (or ```py, or bare ```) fence.

Anything else (an empty reply, a half-written block, several fences, no recognizable form) is a
ReplyError whose message says what is wrong, so the loop can record it or ask again.

Applying blocks is line-based: a block's SEARCH lines must occur exactly once in the current text
as whole lines (trailing whitespace is ignored, indentation is not). Blocks apply in order, each
to the result of the previous. A block that matches nowhere or more than once is a PatchError that
quotes the block and the closest region of the parent, ready to send back for one repair.
"""

import difflib
import re
from typing import Literal

from pydantic import BaseModel

SEARCH_MARKER = "<<<<<<< SEARCH"
DIVIDER_MARKER = "======="
REPLACE_MARKER = ">>>>>>> REPLACE"
# A line that looks like an attempted marker (git-conflict style runs of <, = or >).
MARKER_LIKE = re.compile(r"^\s*(<{5,}|={5,}|>{5,})")
FENCE = re.compile(r"^\s*```\s*([A-Za-z0-9_+-]*)\s*$")
PYTHON_TAGS = ("python", "py", "")


class ReplyError(ValueError):
    """A reply that is not one well-formed SEARCH/REPLACE set or full module."""


class SearchReplace(BaseModel):
    """One block: `search` lines of the parent replaced by `replace` lines (no trailing newline)."""

    search: str
    replace: str
    line: int  # line of the reply where the block starts, for messages


class ParsedReply(BaseModel):
    """A reply's content: SEARCH/REPLACE blocks (format 'diff') or a whole module ('full')."""

    format: Literal["diff", "full"]
    blocks: list[SearchReplace] = []
    source: str | None = None


class PatchError(ValueError):
    """A SEARCH text that is not found exactly once; the message shows the closest region."""

    def __init__(self, message: str, block_index: int, block: SearchReplace, closest: str,
                 closest_line: int, similarity: float, occurrences: list[int]):
        super().__init__(message)
        self.block_index = block_index
        self.block = block
        self.closest = closest
        self.closest_line = closest_line
        self.similarity = similarity
        self.occurrences = occurrences


def explanation(text: str, limit: int = 200) -> str:
    """The reply's own one-line description of its change: its first line of prose before any
    block or fence (the prompt asks for one), without Markdown emphasis; "" when there is none."""
    for line in text.splitlines():
        if MARKER_LIKE.match(line) or FENCE.match(line):
            return ""
        words = line.strip().strip("#*_ ").strip()
        if words:
            return words if len(words) <= limit else words[: limit - 3].rstrip() + "..."
    return ""


def parse_reply(text: str) -> ParsedReply:
    """SEARCH/REPLACE blocks if the reply has any marker, else the one fenced module."""
    if not text or not text.strip():
        raise ReplyError("the reply is empty: answer with SEARCH/REPLACE blocks or the full module in one ```python fence")
    lines = text.splitlines()
    if any(MARKER_LIKE.match(line) for line in lines):
        return ParsedReply(format="diff", blocks=_parse_blocks(lines))
    return ParsedReply(format="full", source=_parse_fence(lines))


def _marker(line: str) -> str | None:
    stripped = line.strip()
    return stripped if stripped in (SEARCH_MARKER, DIVIDER_MARKER, REPLACE_MARKER) else None


def _parse_blocks(lines: list[str]) -> list[SearchReplace]:
    blocks: list[SearchReplace] = []
    state, start, search, replace = "outside", 0, [], []
    for number, line in enumerate(lines, start=1):
        marker = _marker(line)
        if MARKER_LIKE.match(line) and marker is None:
            raise ReplyError(
                f"line {number}: `{line.strip()}` is not a marker; markers are exactly "
                f"`{SEARCH_MARKER}`, `{DIVIDER_MARKER}` and `{REPLACE_MARKER}`, each on its own line"
            )
        if state == "outside":
            if marker == SEARCH_MARKER:
                state, start, search, replace = "search", number, [], []
            elif marker is not None:
                raise ReplyError(f"line {number}: `{marker}` outside a block; every block starts with `{SEARCH_MARKER}`")
        elif state == "search":
            if marker == DIVIDER_MARKER:
                state = "replace"
            elif marker is not None:
                raise ReplyError(
                    f"line {number}: `{marker}` in the SEARCH part of the block starting at line {start}; "
                    f"expected `{DIVIDER_MARKER}` between the SEARCH and the REPLACE part"
                )
            else:
                search.append(line)
        else:  # replace
            if marker == REPLACE_MARKER:
                if not any(s.strip() for s in search):
                    raise ReplyError(
                        f"line {start}: the block's SEARCH part is empty; copy the exact lines of the parent "
                        "that the block replaces"
                    )
                blocks.append(SearchReplace(search="\n".join(search), replace="\n".join(replace), line=start))
                state = "outside"
            elif marker is not None:
                raise ReplyError(
                    f"line {number}: `{marker}` in the REPLACE part of the block starting at line {start}; "
                    f"end the block with `{REPLACE_MARKER}`"
                )
            else:
                replace.append(line)
    if state != "outside":
        raise ReplyError(f"line {start}: the block starting here is not closed with `{REPLACE_MARKER}`")
    return blocks


def _parse_fence(lines: list[str]) -> str:
    fences: list[tuple[int, int, str]] = []  # (opening line index, closing line index, tag)
    opening: tuple[int, str] | None = None
    for index, line in enumerate(lines):
        match = FENCE.match(line)
        if not match:
            continue
        if opening is None:
            opening = (index, match.group(1).lower())
        else:
            fences.append((opening[0], index, opening[1]))
            opening = None
    if opening is not None:
        raise ReplyError(f"line {opening[0] + 1}: the code fence opened here is never closed with ```")
    if not fences:
        raise ReplyError(
            "the reply has neither SEARCH/REPLACE blocks nor a ```python fence: answer in one of these two forms"
        )
    if len(fences) > 1:
        where = ", ".join(str(start + 1) for start, _, _ in fences)
        raise ReplyError(
            f"the reply has {len(fences)} code fences (at lines {where}); return the whole module in exactly one "
            "```python fence, or use SEARCH/REPLACE blocks"
        )
    start, end, tag = fences[0]
    if tag not in PYTHON_TAGS:
        raise ReplyError(f"line {start + 1}: the fence is tagged `{tag}`; the module must be in a ```python fence")
    source = "\n".join(lines[start + 1 : end])
    if not source.strip():
        raise ReplyError(f"line {start + 1}: the ```python fence is empty; put the whole module in it")
    return source + "\n"


def apply_reply(parent: str, reply: ParsedReply) -> str:
    """The child source: the blocks applied to the parent, or the full module."""
    if reply.format == "full":
        assert reply.source is not None
        return reply.source
    return apply_blocks(parent, reply.blocks)


def apply_blocks(parent: str, blocks: list[SearchReplace]) -> str:
    """Apply the blocks in order; raises PatchError for a block not found exactly once."""
    if not blocks:
        raise ReplyError("the reply has no SEARCH/REPLACE block")
    lines = parent.splitlines()
    trailing_newline = parent.endswith("\n")
    for index, block in enumerate(blocks):
        search = block.search.split("\n")
        occurrences = _occurrences(lines, search)
        if len(occurrences) != 1:
            raise _patch_error(index, len(blocks), block, lines, occurrences)
        at = occurrences[0]
        replace = block.replace.split("\n") if block.replace else []
        lines = lines[:at] + replace + lines[at + len(search) :]
    text = "\n".join(lines)
    return text + "\n" if trailing_newline or text else text


def _occurrences(lines: list[str], search: list[str]) -> list[int]:
    wanted = [s.rstrip() for s in search]
    n = len(wanted)
    stripped = [line.rstrip() for line in lines]
    return [i for i in range(len(lines) - n + 1) if stripped[i : i + n] == wanted]


def _closest_region(lines: list[str], search: list[str]) -> tuple[int, list[str], float]:
    """(start index, lines, similarity ratio) of the window of the parent most like `search`."""
    n = max(1, len(search))
    target = "\n".join(s.rstrip() for s in search)
    best = (0, lines[:n], 0.0)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for start in range(max(1, len(lines) - n + 1)):
        window = lines[start : start + n]
        matcher.set_seq1("\n".join(w.rstrip() for w in window))
        if matcher.real_quick_ratio() <= best[2] or matcher.quick_ratio() <= best[2]:
            continue
        ratio = matcher.ratio()
        if ratio > best[2]:
            best = (start, window, ratio)
    return best


def _patch_error(index: int, total: int, block: SearchReplace, lines: list[str], occurrences: list[int]) -> PatchError:
    search = block.search.split("\n")
    header = f"SEARCH/REPLACE block {index + 1} of {total} (reply line {block.line})"
    quoted = "\n".join(search)
    if occurrences:
        where = ", ".join(str(i + 1) for i in occurrences)
        message = (
            f"{header}: its SEARCH text occurs {len(occurrences)} times in the parent (at lines {where}), so it is "
            f"ambiguous. Add surrounding lines until it matches exactly once.\nSEARCH text:\n{quoted}"
        )
        return PatchError(message, index, block, quoted, occurrences[0] + 1, 1.0, [i + 1 for i in occurrences])
    start, region, similarity = _closest_region(lines, search)
    region_text = "\n".join(region)
    differences = "\n".join(
        difflib.unified_diff(region, search, "parent", "your SEARCH", lineterm="", n=len(search))
    )
    message = (
        f"{header}: its SEARCH text does not occur in the parent. SEARCH lines must be copied exactly "
        f"(indentation included).\nSEARCH text:\n{quoted}\n"
        f"Closest region of the parent (lines {start + 1}-{start + len(region)}, {similarity:.0%} similar):\n"
        f"{region_text}\nDifferences (parent -> your SEARCH):\n{differences}"
    )
    return PatchError(message, index, block, region_text, start + 1, similarity, [])
