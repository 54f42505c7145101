"""The walk over every node: each reference judged once, as a whole, by what it really is.

A reference (a name, an attribute chain or a constant getattr) is resolved to the library names
it may stand for (references.py), and each of those is walked through the installed library
(library.py). `torch.utils.data.DataLoader` is one violation, not one per link of the chain.
Around that, the rules that need no library: dunders and frame attributes on any object,
computed attribute names on any object, stores into library objects, modules used as values
where the check could not follow them, and module state changed at run time.
"""

import ast
import string

from evaluator.static_check.imports import check_import_path
from evaluator.static_check.library import MISSING, Resolution, is_module, resolve_library
from evaluator.static_check.module_state import container_root, local_names, module_containers
from evaluator.static_check.namespaces import ALLOWED_IMPORTS, WRITABLE_FLAGS
from evaluator.static_check.nodes import (
    code,
    constant_getattr,
    constant_string,
    is_dunder,
    root,
    shortest_first,
)
from evaluator.static_check.references import collect_aliases, name_bound_values, resolve
from evaluator.static_check.rules import (
    ALLOWED_DUNDER_ATTRIBUTES,
    ALLOWED_DUNDER_STORES,
    ATTRIBUTE_BUILTINS,
    COMPUTED_ATTRIBUTE_FIX,
    DIRECT_CALL_BUILTINS,
    FORBIDDEN_BUILTINS,
    FORBIDDEN_METHODS,
    FORBIDDEN_MODULE_NAMES,
    FRAME_ATTRIBUTES,
    GLOBAL_STATE_FIX,
    INTROSPECTION_FIX,
    MODULE_VALUE_FIX,
    MONKEYPATCH_FIX,
    MUTATING_METHODS,
    PRIVATE_FIX,
)
from evaluator.static_check.violation import Violation


class ContractVisitor(ast.NodeVisitor):
    """Walks the whole module once and records each node that reaches outside the contract."""

    def __init__(self, tree: ast.Module):
        self.aliases = collect_aliases(tree)
        self.violations: list[Violation] = []
        nodes = list(ast.walk(tree))
        # Nodes that are the object of an attribute access (or of a constant getattr/hasattr):
        # part of a longer reference, judged with it.
        self._inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        self._inner |= {id(n.args[0]) for n in nodes if _attribute_builtin(n)}
        self._name_bound = name_bound_values(tree)  # where a module may be a value
        self._with_calls = {id(item.context_expr.func) for n in nodes if isinstance(n, (ast.With, ast.AsyncWith))
                            for item in n.items if isinstance(item.context_expr, ast.Call)}
        self._plain_type_calls = _type_calls_compared(nodes)
        self._called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
        self._called |= _type_as_a_type(nodes)  # `x: type[T]`, isinstance(c, type): no object escapes
        self._containers = module_containers(tree)
        self._scopes: list[set[str]] = []  # local names of the functions being visited, innermost last

    def _report(self, rule: str, node: ast.AST, message: str, fix: str) -> None:
        self.violations.append(Violation(rule=rule, line=getattr(node, "lineno", 0), message=message, fix=fix))

    # Imports.

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.violations += check_import_path(alias.name, alias)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._report("import", node, f"relative import `{code(node)}`: a component cannot import another module.",
                         "import only torch, numpy, math and typing; the harness passes what a component needs")
            return
        found = check_import_path(node.module or "", node)
        if found:
            self.violations += found
            return
        for alias in node.names:
            if alias.name == "*":
                self._report("import", alias, f"`from {node.module} import *` hides which names the module uses.",
                             f"import the names you use explicitly (`from {node.module} import name`)")
            else:
                self.violations += check_import_path(f"{node.module}.{alias.name}", alias)

    # Statements that keep state outside the harness's objects.

    def visit_Global(self, node: ast.Global) -> None:
        self._report("global-state", node, f"`global {', '.join(node.names)}` keeps state in the module.",
                     GLOBAL_STATE_FIX)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._report("global-state", node, f"`nonlocal {', '.join(node.names)}` keeps state in a closure.",
                     GLOBAL_STATE_FIX)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._scopes.append(local_names(node))
        self.generic_visit(node)
        self._scopes.pop()

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._check_container_mutation(node, node.value)
            self._check_library_store(node, node.value, None, containers_only=False)
        self.generic_visit(node)

    def _check_container_mutation(self, node: ast.expr, changed: ast.expr) -> None:
        """Changing a module-level list, dict or set from inside a function: it lives across runs."""
        name = container_root(changed)
        if self._scopes and name in self._containers and not any(name in scope for scope in self._scopes):
            self._report("global-state", node,
                         f"`{code(node)}` changes `{name}`, a module-level container, from inside a function.",
                         GLOBAL_STATE_FIX)

    # Names, attributes and calls.

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS:
            self._report("forbidden-name", node, f"`{node.id}` {FORBIDDEN_BUILTINS[node.id]}.",
                         f"remove `{node.id}`: a component gets everything it needs as arguments from the harness "
                         "(if it is your own variable, rename it)")
        elif node.id in DIRECT_CALL_BUILTINS and id(node) not in self._called:
            self._report("forbidden-name", node, f"`{node.id}` is used as a value, where the check cannot follow it.",
                         f"call `{node.id}(...)` directly (if it is your own variable, rename it)")
        elif is_dunder(node.id):
            if not (isinstance(node.ctx, ast.Store) and node.id in ALLOWED_DUNDER_STORES):
                self._report_dunder(node, node.id)
        elif node.id in FORBIDDEN_MODULE_NAMES:
            self._report("forbidden-name", node, f"`{node.id}` names a module outside the contract.",
                         f"remove `{node.id}`: use only torch, numpy, math and typing "
                         "(if it is your own variable, rename it)")
        elif id(node) not in self._inner:
            self._check_reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ("format", "format_map"):
            self._check_format(node, node)
        if self._check_attribute_name(node, node.attr, f".{node.attr}"):
            pass
        elif _private_attribute_of_another_object(node) and not self._rooted_in_a_module(node):
            self._report("private-access", node,
                         f"`.{node.attr}` reaches a private attribute of an object the component did not define "
                         "(tensors, storages and library objects keep native helpers there).",
                         PRIVATE_FIX)
        elif id(node) not in self._inner:
            self._check_reference(node)
            if isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Subscript):
                self._check_container_mutation(node, node.value)  # `CACHE["w"].data = ...`
        self.generic_visit(node)

    def _rooted_in_a_module(self, node: ast.Attribute) -> bool:
        """A chain that starts at an imported or forbidden module: the import and library rules judge it."""
        base: ast.expr = node
        while isinstance(base, ast.Attribute):  # a call or subscript in between makes it an object's attribute
            base = base.value
        imported = isinstance(base, ast.Name) and (base.id in self.aliases or base.id in FORBIDDEN_MODULE_NAMES)
        return imported or bool(resolve(node, self.aliases))

    def _check_attribute_name(self, node: ast.AST, name: str, shown: str) -> bool:
        """Dunders, frame attributes and module names as attributes of anything; True when reported."""
        if is_dunder(name) and name not in ALLOWED_DUNDER_ATTRIBUTES:
            self._report_dunder(node, shown)
        elif name in FRAME_ATTRIBUTES:
            self._report("dunder-access", node, f"`{shown}` reaches a frame, and through it the harness's locals.",
                         INTROSPECTION_FIX)
        elif name in FORBIDDEN_MODULE_NAMES:
            self._report("forbidden-name", node, f"`{shown}` reaches the module `{name}` through another object.",
                         f"remove it: use only torch, numpy, math and typing (if `{name}` is your own attribute, "
                         "rename it)")
        else:
            return False
        return True

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_BUILTINS:
            self._check_attribute_builtin(node, func.id)
        if (isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 1 and not node.keywords
                and id(node) not in self._plain_type_calls):
            self._report("dunder-access", node,
                         f"`{code(node)}` hands out the class of an object the harness may share "
                         "(a tensor's class is torch.Tensor), which could then be changed.",
                         "use isinstance(x, T), or compare the class directly (`type(x) is T`)")
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            self._check_container_mutation(node, func.value)
            self._check_library_store(node, func.value, None, containers_only=True)
        if constant_getattr(node) is not None and id(node) not in self._inner:
            self._check_reference(node)
        self.generic_visit(node)

    def _check_attribute_builtin(self, node: ast.Call, builtin: str) -> None:
        """getattr/setattr/delattr/hasattr: the name must be a constant, and is judged as an attribute."""
        hidden = node.keywords or any(isinstance(a, ast.Starred) for a in node.args)
        if len(node.args) < 2 and not hidden:
            return  # fails when it runs
        obj, name = node.args[0], None if hidden else constant_string(node.args[1])
        if name is None:
            self._report("forbidden-call", node,
                         f"`{code(node)}` looks up a computed attribute name, which the check cannot follow.",
                         COMPUTED_ATTRIBUTE_FIX)
        elif self._check_attribute_name(node, name, f"{builtin}(..., {name!r})"):
            pass
        elif builtin in ("setattr", "delattr"):
            self._check_library_store(node, obj, name)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        """`case C(attr=x)` reads `attr` from the subject, as an attribute access would."""
        for name in node.kwd_attrs:
            self._check_attribute_name(node, name, f"case ...({name}=...)")
        self.generic_visit(node)

    def _check_format(self, node: ast.expr, func: ast.Attribute) -> None:
        """str.format looks attributes up by the names in its template (`{0.__globals__}`)."""
        template = constant_string(func.value)
        if template is None:
            self._report("forbidden-call", node,
                         f"`{code(node)}` formats with a template the check cannot see, which can read any "
                         "attribute (`{0.__globals__}`).", "use an f-string")
            return
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        except ValueError:
            return  # a malformed template fails when it runs
        if any("." in field or "[" in field for field in fields):
            self._report("forbidden-call", node,
                         f"`{code(node)}` reads attributes or items through its template.",
                         "use an f-string and write the attribute out")

    def _check_reference(self, node: ast.expr) -> None:
        """Judge a whole reference: a store into a library, a refused object, a module as a value."""
        text = code(node)
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            if isinstance(node, ast.Attribute):
                self._check_library_store(node, node.value, node.attr)
            return
        dotted = shortest_first(resolve(node, self.aliases))
        method = node.attr if isinstance(node, ast.Attribute) else (constant_getattr(node) or (None, None))[1]
        if method in FORBIDDEN_METHODS and not dotted:  # `a.tofile` and `getattr(a, "tofile")` alike
            reason, fix = FORBIDDEN_METHODS[method]
            self._report("forbidden-call", node, f"`{text}` {reason}.", fix)
            return
        resolutions = [(name, resolve_library(name)) for name in dotted]
        for name, resolution in resolutions:
            finding = resolution.finding
            if finding is None or (finding.rule == "global-state" and id(node) in self._with_calls):
                continue
            shown = f"`{text}`" if text == name else f"`{text}` ({name})"
            self._report(finding.rule, node, f"{shown} {finding.reason}.", finding.fix)
            return
        modules = [name for name, resolution in resolutions if is_module(resolution)]
        if modules and id(node) not in self._name_bound:
            self._report("module-value", node,
                         f"`{text}` uses the module `{modules[0]}` as a value, where the check cannot follow it.",
                         MODULE_VALUE_FIX)

    def _check_library_store(self, node: ast.AST, obj: ast.expr, attr: str | None, containers_only: bool = False) -> None:
        """Assigning to, deleting or changing in place an attribute or item of a library object.

        With containers_only (a call of `.append`, `.update`...), only a library list, dict or set
        (or an object the walk could not see) counts: `torch.add` is a function, not a change.
        """
        for base in shortest_first(resolve(obj, self.aliases)):
            if root(base) not in ALLOWED_IMPORTS:
                continue
            resolution: Resolution = resolve_library(base)
            if containers_only and (resolution.finding is not None or not (
                    resolution.target is MISSING or isinstance(resolution.target, (dict, list, set)))):
                continue
            target = f"{resolution.canonical}.{attr}" if attr else resolution.canonical
            if attr and target in WRITABLE_FLAGS:
                continue
            self._report("monkeypatch", node, f"`{code(node)}` changes `{target}`, a library object.", MONKEYPATCH_FIX)
            return

    def _report_dunder(self, node: ast.AST, what: str) -> None:
        self._report("dunder-access", node,
                     f"`{what}` reaches interpreter internals (frames, globals, code, class internals, docstrings).",
                     INTROSPECTION_FIX)


def _private_attribute_of_another_object(node: ast.Attribute) -> bool:
    """`x._name` where `x` is not `self` or `cls`: private names are the component's own business only.

    Library objects keep native file, process and memory helpers behind private names
    (`tensor.untyped_storage()._share_filename_cpu_()`, `model._modules`); the component's own
    classes may use private names on `self` and `cls`. Library modules' private names are
    judged by the library resolver (torch._foreach_* is allowed there).
    """
    name = node.attr
    if not name.startswith("_") or is_dunder(name):
        return False
    if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
        return False
    return not name.startswith("_foreach_")  # torch's fused kernels; the library resolver judges the module


def _attribute_builtin(node: ast.AST) -> bool:
    """`getattr(obj, ...)` and its kin: the object is judged with the name (a reference, or a store)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_BUILTINS
            and len(node.args) >= 2)


def _type_as_a_type(nodes: list[ast.AST]) -> set[int]:
    """ids of `type` names in annotations, subscripts and isinstance/issubclass arguments."""
    roots: list[ast.AST] = []
    for node in nodes:
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.Subscript):
            roots.append(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass"):
            roots.extend(node.args[1:])
    return {id(n) for r in roots for n in ast.walk(r) if isinstance(n, ast.Name) and n.id == "type"}


def _type_calls_compared(nodes: list[ast.AST]) -> set[int]:
    """ids of `type(x)` calls that are only compared, tested or called: no class escapes them."""
    allowed: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.Compare):
            allowed.update(id(operand) for operand in (node.left, *node.comparators))
        elif isinstance(node, ast.Call):
            allowed.add(id(node.func))
            if isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass"):
                allowed.update(id(arg) for arg in node.args)
    return allowed
