"""The interface: the required names, their parameters in order, and HYPERPARAMS as plain data."""

import ast

from components.interface import REQUIRED_NAMES
from evaluator.static_check.nodes import code
from evaluator.static_check.violation import Violation

Binding = (
    ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign | ast.Import | ast.ImportFrom
)


def _top_level_bindings(tree: ast.Module) -> dict[str, Binding]:
    """The statement that last binds each top-level name (the one the harness will see)."""
    bindings: dict[str, Binding] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bindings[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        bindings[node.id] = stmt
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            bindings[stmt.target.id] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                bindings[alias.asname or alias.name.split(".")[0]] = stmt
    return bindings


def check_interface(component: str, tree: ast.Module) -> list[Violation]:
    bindings = _top_level_bindings(tree)
    violations = []
    for name, params in REQUIRED_NAMES[component].items():
        binding = bindings.get(name)
        if binding is None:
            shape = "a dict literal" if params is None else _signature_hint(name, params, name[:1].isupper())
            violations.append(Violation(
                rule="interface", line=0, message=f"the {component} component must define `{name}` at module level.",
                fix=f"define {shape} at module level (see components/README.md)"))
        elif params is None:
            violations += _check_hyperparams(name, binding)
        else:
            violations += _check_parameters(name, params, binding, bindings)
    return violations


def _signature_hint(name: str, params: tuple[str, ...], is_class: bool) -> str:
    if is_class:
        return f"`class {name}` with `def __init__(self, {', '.join(params)})`"
    return f"`def {name}({', '.join(params)})`"


def _check_parameters(
    name: str, params: tuple[str, ...], binding: Binding, bindings: dict[str, Binding]
) -> list[Violation]:
    is_class = isinstance(binding, ast.ClassDef)
    have = _leading_parameters(binding, bindings, seen=set())
    hint = _signature_hint(name, params, is_class)
    if have is None:
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` is bound in a way whose parameters the check cannot read.",
                          fix=f"define it directly as {hint}")]
    if tuple(have[: len(params)]) != params:
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` must take ({', '.join(params)}) as its first parameters; "
                                  f"it takes ({', '.join(have)}).",
                          fix=f"define {hint}: the harness passes these positionally, in this order")]
    return []


def _leading_parameters(binding: ast.AST, bindings: dict[str, Binding], seen: set[str]) -> list[str] | None:
    """Positional parameter names of a def, a lambda, a class's __init__ (without self), or an
    assignment of one of those; None when they cannot be read statically."""
    if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return [a.arg for a in (*binding.args.posonlyargs, *binding.args.args)]
    if isinstance(binding, ast.ClassDef):
        inits = [s for s in binding.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        if inits:
            return _leading_parameters(inits[-1], bindings, seen)[1:]
        # No __init__ of its own: the first base defined in this module that has one.
        for base in binding.bases:
            if isinstance(base, ast.Name) and base.id not in seen and isinstance(bindings.get(base.id), ast.ClassDef):
                seen.add(base.id)
                return _leading_parameters(bindings[base.id], bindings, seen)
        return None
    if isinstance(binding, (ast.Assign, ast.AnnAssign)):
        value = binding.value
        if isinstance(value, ast.Lambda):
            return _leading_parameters(value, bindings, seen)
        if isinstance(value, ast.Name) and value.id not in seen and value.id in bindings:
            seen.add(value.id)
            return _leading_parameters(bindings[value.id], bindings, seen)
    return None


HYPERPARAMS_FIX = (
    'write `HYPERPARAMS = {"batch_size": 2000, ...}`: a dict literal with string keys and int, float or bool '
    "values, which the harness and the mutator read as plain data"
)


def _check_hyperparams(name: str, binding: Binding) -> list[Violation]:
    value = binding.value if isinstance(binding, (ast.Assign, ast.AnnAssign)) else None
    if not isinstance(value, ast.Dict):
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` must be assigned a dict literal.", fix=HYPERPARAMS_FIX)]
    violations = []
    for key, item in zip(value.keys, value.values):
        if key is None:
            violations.append(Violation(rule="interface", line=item.lineno,
                                        message=f"`**{code(item)}` in {name} is not a literal entry.",
                                        fix=HYPERPARAMS_FIX))
        elif not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            violations.append(Violation(rule="interface", line=key.lineno,
                                        message=f"{name} key `{code(key)}` is not a string literal.",
                                        fix=HYPERPARAMS_FIX))
        elif not _is_number_literal(item):
            violations.append(Violation(rule="interface", line=item.lineno,
                                        message=f"{name}[{key.value!r}] = `{code(item)}` is not an int, "
                                                "float or bool literal.",
                                        fix=HYPERPARAMS_FIX))
    return violations


def _is_number_literal(node: ast.expr) -> bool:
    """An int, float or bool constant, or a signed int or float constant (`-3`, `+1e-4`)."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float, bool)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
    return False
