import pytest

from components import COMPONENT_NAMES
from evolve.canonical import CanonicalError, canonical_hash, canonical_source

A = '''"""Module doc."""
import torch

X = 1  # a comment


def f(a, b=2):
    """Doc of f."""
    return a + b
'''

# Same program: different quotes, comments, blank lines, line breaks, no docstrings.
B = """import torch
X = 1
def f(a,
      b=2):
    # only a comment
    return (a + b)
"""


def test_form_does_not_change_the_hash():
    assert canonical_source(A) == canonical_source(B)
    assert canonical_hash(A) == canonical_hash(B)
    assert len(canonical_hash(A)) == 64


def test_a_changed_constant_changes_the_hash():
    assert canonical_hash(A) != canonical_hash(A.replace("b=2", "b=3"))


def test_a_function_with_only_a_docstring_stays_valid():
    text = canonical_source('def f():\n    """Only a doc."""\n')
    assert text.strip() == "def f():\n    pass"
    compile(text, "<canonical>", "exec")


def test_string_statements_after_the_first_are_kept():
    assert "'kept'" in canonical_source('def f():\n    x = 1\n    "kept"\n')


def test_syntax_error_names_the_line():
    with pytest.raises(CanonicalError, match="line 2"):
        canonical_source("x = 1\ndef f(:\n")


def test_baseline_components_are_distinct(baseline_set):
    hashes = {canonical_hash(baseline_set.sources[name]) for name in COMPONENT_NAMES}
    assert len(hashes) == len(COMPONENT_NAMES)
