"""The statement-cached normal forms (evolve/database/normal_form.py) are the whole-module ones, byte for byte.

The reference is the path the project took before: parse the module, strip its docstrings,
unparse (canonical, its hash a component's identity), rename the locals, unparse (the novelty
check's exact key). Compared on every shipped component, on every edit the built-in mutator's
operators make of them, on chains of edits (a lineage: the cache holds the parents' statements),
and on texts at the edges of the reasoning: docstrings, decorators, `;`, odd layouts.
"""

import ast

import numpy as np
import pytest

from components import SHIPPED_SETS
from evaluator.component_set import ComponentSet
from evolve.config import MutatorSettings
from evolve.database import canonical, normal_form
from evolve.database.canonical import canonical_tree
from evolve.database.normal_form import Renamer, StatementCache, normal_forms
from evolve.search import novelty
from evolve.search.operators import Tree, operators_for
from evolve.simulation.proposer import set_site


def whole_module(source: str) -> tuple[str, str] | None:
    """The forms by the whole-module path; None when it cannot parse or unparse."""
    tree = canonical_tree(source)
    if tree is None:
        return None
    try:
        text = ast.unparse(tree)
        return text, ast.unparse(Renamer().visit(tree))
    except (ValueError, RecursionError):
        return None


def assert_same(source: str, cache: StatementCache) -> None:
    forms = normal_forms(source, cache)
    if forms is not None:
        assert tuple(forms) == whole_module(source), source[:200]
    assert normal_forms(source, cache) == forms  # again, every statement from the cache


SHIPPED = [(name, component, text) for name in SHIPPED_SETS
           for component, text in ComponentSet.shipped(name).sources.items()]


@pytest.mark.parametrize("set_name,component,source", SHIPPED, ids=[f"{n}-{c}" for n, c, _ in SHIPPED])
def test_shipped_components_and_every_operator_edit(set_name, component, source):
    cache = StatementCache(100_000)
    assert normal_forms(source, cache) is not None  # the shipped modules take the fast path
    assert_same(source, cache)
    rng = np.random.default_rng(0)
    for operator in operators_for(component, MutatorSettings()):
        for edit in operator.edits(Tree(component, source), rng):
            assert_same(edit.source, cache)


@pytest.mark.parametrize("component", ["architecture", "optimizer", "hyperparams"])
def test_a_lineage_of_edits_through_a_small_cache(component):
    """Children of children, as a search makes them, with a cache small enough to drop entries."""
    source = ComponentSet.shipped("baseline").sources[component]
    cache, rng = StatementCache(8), np.random.default_rng(1)
    operators = operators_for(component, MutatorSettings())
    for step in range(30):
        edits = [e for op in operators for e in op.edits(Tree(component, source), rng)]
        source = edits[int(rng.integers(len(edits)))].source if edits and step % 3 else set_site(source, step % 4, str(step))
        assert_same(source, cache)


EDGES = {
    "docstring only": '"""Only a docstring."""\n',
    "two docstrings": '"""One."""\n"""Two."""\nx = 1\n',
    "docstring then def": '"""Doc."""\n\n\ndef f(a):\n    """Its doc."""\n    b = a\n    return b\n',
    "no docstring, def first": "@decorator\ndef f(a, *args, k=1, **kw):\n    return a + k\n\nclass C:\n    'doc'\n",
    "decorator over lines": "@(\n    decorator\n)\ndef f():\n    pass\n\n\n@a.b(1,\n     2)\nclass D(Base, metaclass=M):\n    x: int = 1\n",
    "semicolons": "x = 1; y = 2\nz = 3\n",
    "trailing semicolon and comments": "x = 1;  # one\n# between\ny = 2  # two\n",
    "if else at top": "if X:\n    a = 1\nelif Y:\n    a = 2\nelse:\n    a = 3\ntry:\n    b = 1\nexcept E:\n    b = 2\nfinally:\n    c = 3\n",
    "strings at column 0": 's = """\nx = 1\ndef g(): pass\n"""\nt = 2\n',
    "continuations": "x = (1,\n2)\ny = 1 + \\\n    2\nD = {\n'a': 1,\n}\n",
    "async and nested": "async def f(a):\n    async with b as c:\n        def g(d):\n            return a + d\n    return [e for e in c]\n",
    "carriage returns": "x = 1\r\ny = 2\r\n",
    "form feed": "x = 1\n\x0c\ny = 2\n",
    "unparsable": "def f(:\n    pass\n",
    "empty": "",
    "comments only": "# nothing\n",
    "lambda and walrus": "f = lambda a, b=2: a + b\nif (n := 10) > 5:\n    print(n)\n",
    "match": "match x:\n    case [a, b]:\n        y = a\n    case _:\n        y = 0\n",
    "global and nonlocal": "G = 1\ndef f():\n    global G\n    G = 2\n    def g():\n        nonlocal_x = 1\n        return nonlocal_x\n    return g\n",
    "f-strings and unicode": "name = 'é'\ndef f(v):\n    return f\"{v!r:>10} {name}\"\n# é ü\nx = 'ü'\n",
    "docstring not first": "x = 1\n'''not a docstring'''\ndef f():\n    x = 1\n    'also not'\n",
}


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_texts(name):
    assert_same(EDGES[name], StatementCache(100))


def test_texts_outside_the_reasoning_take_the_whole_module_path():
    for name in ("carriage returns", "semicolons", "unparsable"):
        assert normal_forms(EDGES[name], StatementCache(100)) is None


def test_the_same_statement_as_first_or_later_is_kept_apart():
    """A string statement is a docstring when first (unparsed with other quotes), not when later."""
    cache = StatementCache(100)
    for source in ["'a'\n'b'\n", "x = 1\n'b'\n", "'b'\nx = 1\n", "x = 1\n'a'\n'b'\n"]:
        assert_same(source, cache)


def test_callers_get_the_whole_module_answers(monkeypatch):
    """canonical_source, source_hash and normalised_text answer as before, by either path."""
    sources = [text for _, _, text in SHIPPED] + list(EDGES.values())
    fast = [(canonical.canonical_source(s), novelty.normalised_text.__wrapped__(s)) for s in sources]
    monkeypatch.setattr(canonical, "normal_forms", lambda source: None)
    monkeypatch.setattr(novelty, "normal_forms", lambda source: None)
    canonical._HASHES.clear()
    slow = [(canonical.canonical_source(s), novelty.normalised_text.__wrapped__(s)) for s in sources]
    assert fast == slow
    assert normal_form.STATEMENTS.size == normal_form.CACHED_STATEMENTS
