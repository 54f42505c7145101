"""Novelty before evaluation: skip a proposal that is a near-copy of a program already evaluated.

Identity (identity.py) already catches an exact copy of a known set, up to comments, formatting
and docstrings. A near-copy is subtler: the same code with local names renamed, or a change
smaller than `search.novelty_threshold`. Before a candidate is stored, its module is compared with
every module already evaluated (or queued) for that component in the same context, that is with
the same other components (the same module over a new architecture is a new program; the
seed's modules are in the archive too):

- structural distance: the module is parsed, docstrings dropped, each function's parameters and
  local names renamed in order of first appearance (v0, v1, ...), then unparsed and tokenized;
  the distance is the token edit distance divided by the longer length (0: the same program up to
  renaming; 1: nothing in common). At most the threshold: a near-copy.
- embeddings, when `search.embedding_model` is set (through the configured OpenAI-compatible
  endpoint): the cosine distance of the two modules' embeddings, at most
  `search.embedding_threshold`, also makes a near-copy.

A skipped proposal is stored as a proposal of outcome `near-copy`, naming the program it copies
and the distance; it counts in the loop's statistics, the prompt's and `evolve show`'s. Merges are
never checked (their module is a known one by design; their set is new).
"""

import ast
import hashlib
import io
import tokenize
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from pydantic import BaseModel
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from evolve.database.canonical import canonical_tree, source_hash
from evolve.database.normal_form import Renamer, normal_forms


def context_key(sources: dict[str, str], component: str) -> str:
    """The identity of a set without `component`: candidates are compared only within one."""
    parts = [f"{name}:{source_hash(text)}" for name, text in sorted(sources.items()) if name != component]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@lru_cache(maxsize=2048)
def normalised_text(source: str) -> str | None:
    """The module with docstrings dropped and locals renamed, unparsed; None when unparsable. Its
    canonical hash (the identity's part, canonical.py) comes from the same parse: from the forms of
    its statements where they apply (normal_form.py), else from the whole tree."""
    forms = normal_forms(source)
    if forms is not None:
        source_hash(source, canonical=forms.canonical)
        return forms.renamed
    tree = canonical_tree(source)
    if tree is None:
        return None
    source_hash(source, tree)
    try:
        return ast.unparse(Renamer().visit(tree))
    except (ValueError, RecursionError):
        return None


@lru_cache(maxsize=2048)
def normalised_tokens(source: str) -> tuple[str, ...]:
    """The module's tokens after dropping docstrings and renaming locals; raw tokens when unparsable."""
    normal = normalised_text(source)
    text = source if normal is None else normal
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    try:
        return tuple(t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in skip)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return tuple(text.split())


def exact_key(source: str) -> str:
    """Equal for two modules exactly when their normalised tokens are: the unparsed normal form, which
    is canonical (tokenizing it is the costly part, so the default threshold 0 never does)."""
    normal = normalised_text(source)
    return "\x00".join(normalised_tokens(source)) if normal is None else normal


def structural_distance(a: str, b: str) -> float:
    return float(Levenshtein.normalized_distance(normalised_tokens(a), normalised_tokens(b)))


class NearCopy(BaseModel):
    candidate_id: int
    distance: float
    measure: str  # "structural" or "embedding"

    def reason(self, threshold: float) -> str:
        return (f"a near-copy of #{self.candidate_id}, already evaluated: {self.measure} distance {self.distance:.4f} "
                f"<= threshold {threshold:g}")


Embedder = Callable[[Sequence[str]], list[list[float]]]


class NoveltyArchive:
    """The modules evaluated so far for each component (candidate id -> text), and the check against them.

    Each module is normalised once, when it enters the archive. With the default threshold (0: the
    same program up to renaming and formatting) the check is one dictionary look-up of the normal
    form; a threshold above 0 compares the tokens with every module of the context, in C
    (rapidfuzz, the tokens coded as one character each, the threshold as the cut-off)."""

    def __init__(self, threshold: float, embedder: Embedder | None = None, embedding_threshold: float = 0.0):
        self.threshold, self.embedder, self.embedding_threshold = threshold, embedder, embedding_threshold
        self.modules: dict[tuple[str, str], dict[int, str]] = {}  # (component, context) -> candidate id -> text
        self.coded: dict[tuple[str, str], dict[int, str]] = {}  # the same as coded tokens (threshold above 0 only)
        self.exact: dict[tuple[str, str, str], int] = {}  # (component, context, exact key) -> the smallest candidate id
        self.vocabulary: dict[str, str] = {}  # token -> its character
        self.embeddings: dict[int, np.ndarray] = {}

    def code(self, source: str) -> str:
        """The module's normalised tokens, one character each (new tokens get new characters)."""
        vocabulary = self.vocabulary
        for token in (tokens := normalised_tokens(source)):
            if token not in vocabulary:
                vocabulary[token] = chr(0x100 + len(vocabulary))  # past Latin-1: never a surrogate before 55,000 tokens
        return "".join(vocabulary[token] for token in tokens)

    def add(self, component: str, context: str, candidate_id: int, source: str) -> None:
        self.modules.setdefault((component, context), {})[candidate_id] = source
        if self.threshold > 0:
            self.coded.setdefault((component, context), {})[candidate_id] = self.code(source)
        key = (component, context, exact_key(source))
        self.exact[key] = min(candidate_id, self.exact.get(key, candidate_id))

    def add_seed(self, candidate_id: int, sources: dict[str, str]) -> None:
        """The seed stands for each of its modules."""
        for name, text in sources.items():
            self.add(name, context_key(sources, name), candidate_id, text)

    def near_copy(self, component: str, context: str, source: str) -> NearCopy | None:
        """The closest module known in this context when it is within a threshold, else None."""
        known = self.modules.get((component, context), {})
        if not known:
            return None
        same = self.exact.get((component, context, exact_key(source)))
        if same is not None:  # distance 0: nothing is closer, and this is the smallest id at 0
            return NearCopy(candidate_id=same, distance=0.0, measure="structural")
        if self.threshold > 0:
            within = process.extract(self.code(source), self.coded[(component, context)], scorer=Levenshtein.normalized_distance,
                                     score_cutoff=self.threshold, limit=None)
            if within:
                _, distance, closest = min(within, key=lambda match: (match[1], match[2]))
                return NearCopy(candidate_id=closest, distance=float(distance), measure="structural")
        if self.embedder is not None:
            return self._embedding_near_copy(known, source)
        return None

    def _embedding_near_copy(self, known: dict[int, str], source: str) -> NearCopy | None:
        missing = [cid for cid in known if cid not in self.embeddings]
        vectors = self.embedder([source, *(known[cid] for cid in missing)])
        for cid, vector in zip(missing, vectors[1:]):
            self.embeddings[cid] = unit(vector)
        mine = unit(vectors[0])
        distances = {cid: 1.0 - float(mine @ self.embeddings[cid]) for cid in known}
        closest = min(distances, key=lambda cid: (distances[cid], cid))
        if distances[closest] <= self.embedding_threshold:
            return NearCopy(candidate_id=closest, distance=distances[closest], measure="embedding")
        return None


def unit(vector: Sequence[float]) -> np.ndarray:
    v = np.asarray(vector, dtype=float)
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


def openai_embedder(client, model: str) -> Embedder:
    """Embeddings through an openai.OpenAI client (the configured endpoint)."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        response = client.embeddings.create(model=model, input=list(texts))
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    return embed

