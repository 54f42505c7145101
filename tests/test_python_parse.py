"""Parsing Python is serialised: CPython 3.11's AST constructor is not safe across threads."""

import ast
import threading
import time
from pathlib import Path

import pytest

import evaluator.python_parse as python_parse

ROOT = Path(__file__).resolve().parents[1]


def test_no_module_calls_ast_parse_around_the_lock():
    bare = []
    for path in [*ROOT.glob("evolve/**/*.py"), *ROOT.glob("evaluator/**/*.py")]:
        if path.name == "python_parse.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parse" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ast":
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == [], f"call evaluator.python_parse.parse_python instead of ast.parse at {bare}"


def test_parses_from_several_threads_never_overlap(monkeypatch):
    inside, most = 0, 0
    guard = threading.Lock()

    def slow_parse(source: str) -> ast.Module:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with guard:
            inside -= 1
        return ast.Module(body=[], type_ignores=[])

    monkeypatch.setattr(python_parse.ast, "parse", slow_parse)
    threads = [threading.Thread(target=lambda: [python_parse.parse_python("x = 1") for _ in range(5)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_a_collision_with_a_parse_elsewhere_is_retried_and_other_errors_are_not(monkeypatch):
    real_parse, calls = ast.parse, []

    def colliding_parse(source: str) -> ast.Module:
        calls.append(source)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=27, after=158)")
        return real_parse(source)

    monkeypatch.setattr(python_parse.ast, "parse", colliding_parse)
    assert isinstance(python_parse.parse_python("x = 1").body[0], ast.Assign) and len(calls) == 2

    def broken_parse(source: str) -> ast.Module:
        raise SystemError("some other interpreter failure")

    monkeypatch.setattr(python_parse.ast, "parse", broken_parse)
    with pytest.raises(SystemError, match="other interpreter failure"):
        python_parse.parse_python("x = 1")
