"""A component set as source text, and its loading into fresh, isolated module objects.

The harness never imports a component from the installed package: it executes the text into a
new module object. Shipped sets, candidates from the database and exported scripts therefore
all take the same path, and each load starts from clean module state. A set folder may hold only
the modules it changes and name its base in set.toml: this module alone resolves it.
"""

import inspect
import tomllib
import types
from pathlib import Path

from pydantic import BaseModel, field_validator

from components import COMPONENT_NAMES, SET_FILE, SHIPPED_SETS, shipped_set_dir
from components.interface import REQUIRED_NAMES
from evaluator.python_parse import parse_python


class ComponentError(ValueError):
    """A component that cannot be loaded or breaks the interface; the message names the fix."""


class ComponentSet(BaseModel):
    """Maps every component name to the source text of its module."""

    sources: dict[str, str]
    origin: str = ""

    @field_validator("sources")
    @classmethod
    def _complete(cls, sources: dict[str, str]) -> dict[str, str]:
        missing = [n for n in COMPONENT_NAMES if n not in sources]
        unknown = [n for n in sources if n not in COMPONENT_NAMES]
        if missing or unknown:
            raise ValueError(
                f"a component set needs exactly {', '.join(COMPONENT_NAMES)}; "
                f"missing: {missing or 'none'}, unknown: {unknown or 'none'}"
            )
        return sources

    @classmethod
    def from_folder(cls, folder: Path, default_base: str | None = None) -> "ComponentSet":
        """The set a folder declares: the modules it holds over its base's, the base named in its
        set.toml or else `default_base`; with neither, the folder holds all six modules."""
        return cls(sources=resolve_folder(folder, default_base, ()), origin=str(folder))

    @classmethod
    def shipped(cls, name: str = "baseline") -> "ComponentSet":
        """A shipped set, resolved over its base (components/README.md, "Sets over a base")."""
        return cls(sources=resolve_folder(shipped_set_dir(name), None, (name,)), origin=name)

    @classmethod
    def named(cls, spec: str) -> "ComponentSet":
        """A shipped set by name, or a folder of component modules: each module the folder holds,
        every other one its base set's (set.toml's `base`, else the baseline: `evolve start --components`).

        Every error names the problem and the fix: no such folder, a folder with no component
        module, a module that does not parse (file and line), a base that is no shipped set."""
        if spec in SHIPPED_SETS:
            return cls.shipped(spec)
        folder = Path(spec)
        choices = f"pass a shipped set ({', '.join(SHIPPED_SETS)}) or a folder of component modules"
        if not folder.exists():
            raise ComponentError(f"{folder} is neither a shipped set nor an existing folder: {choices}")
        if not folder.is_dir():
            raise ComponentError(f"{folder} is a file, not a folder: {choices}")
        base = declared_base(folder) or "baseline"
        component_set, found = cls.shipped(base).with_folder(folder)
        for name in found:
            try:
                parse_python(component_set.sources[name])
            except SyntaxError as e:
                raise ComponentError(
                    f"{folder / f'{name}.py'}, line {e.lineno}: {e.msg}: fix the module, or remove it to use the {base}'s"
                ) from None
        return component_set.model_copy(update={"origin": str(folder)})

    def with_folder(self, folder: Path, only: str | None = None) -> tuple["ComponentSet", list[str]]:
        """This set with the component modules `folder` holds in place (`only`: that one alone),
        and the names of those replaced; the modules the folder lacks stay this set's. A folder that
        names a base in set.toml goes in whole only over that base."""
        found = folder_modules(folder)
        if only:
            found = [only] if only in found else []
        if not found:
            wanted = ", ".join(f"{n}.py" for n in ([only] if only else COMPONENT_NAMES))
            raise ComponentError(f"{folder} holds no component module: put in it one or more of {wanted}")
        base = None if only else declared_base(folder)
        if base and self.sources != type(self).shipped(base).sources:
            raise ComponentError(
                f"{folder} names {base} as its base: evaluate it over that set, --components {base} "
                f"(or pick one module with --component NAME)"
            )
        updated = self
        for name in found:
            updated = updated.with_component(name, (folder / f"{name}.py").read_text())
        return updated, found

    def with_component(self, name: str, source: str) -> "ComponentSet":
        """This set with one module's text replaced (how a candidate derives from its parent)."""
        if name not in COMPONENT_NAMES:
            raise ComponentError(f"unknown component {name!r}: choose one of {', '.join(COMPONENT_NAMES)}")
        return ComponentSet(sources={**self.sources, name: source}, origin=f"{self.origin}+{name}")


def folder_modules(folder: Path) -> list[str]:
    """The components a folder holds a module for, in COMPONENT_NAMES order."""
    return [name for name in COMPONENT_NAMES if (folder / f"{name}.py").is_file()]


def declared_base(folder: Path) -> str | None:
    """The shipped set a folder's set.toml names as its base, or None where it has no set.toml."""
    path = folder / SET_FILE
    if not path.is_file():
        return None
    form = f'one line, base = "NAME", NAME a shipped set ({", ".join(SHIPPED_SETS)})'
    try:
        declaration = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ComponentError(f"{path} does not parse ({e}): write {form}") from None
    if list(declaration) != ["base"] or not isinstance(declaration["base"], str):
        raise ComponentError(f"{path} must hold {form}; it holds {declaration}")
    base = declaration["base"]
    if base not in SHIPPED_SETS:
        raise ComponentError(f"{path} names base {base!r}, which is not a shipped set: name one of {', '.join(SHIPPED_SETS)}")
    return base


def resolve_folder(folder: Path, default_base: str | None, chain: tuple[str, ...]) -> dict[str, str]:
    """The sources of the set in `folder`: its base's (recursively), with the folder's modules in place.
    `chain` names the shipped sets resolved on the way here, to refuse a cycle of bases."""
    base = declared_base(folder) or default_base
    own = {name: (folder / f"{name}.py").read_text() for name in folder_modules(folder)}
    if base is None:
        for name in COMPONENT_NAMES:
            if name not in own:
                raise ComponentError(
                    f"{folder} has no {name}.py: a component set folder holds one module per component, "
                    f"or name its base set in {SET_FILE}"
                )
        return {name: own[name] for name in COMPONENT_NAMES}
    if base in chain:
        raise ComponentError(
            f"component sets {' -> '.join((*chain, base))} form a cycle: "
            f"a set's {SET_FILE} must name a base that does not lead back to it"
        )
    return {**resolve_folder(shipped_set_dir(base), None, (*chain, base)), **own}


def load_module(name: str, source: str) -> types.ModuleType:
    """Execute one component's text into a fresh module and check its interface."""
    from evaluator.training import module_from_source  # imports torch, which the inspection commands never need

    try:
        module = module_from_source(name, source)
    except SyntaxError as e:
        raise ComponentError(f"component {name} does not parse: line {e.lineno}: {e.msg}") from e
    except Exception as e:
        raise ComponentError(f"component {name} failed while loading: {type(e).__name__}: {e}") from e
    check_interface(name, module)
    return module


def check_interface(name: str, module: types.ModuleType) -> None:
    for attr, params in REQUIRED_NAMES[name].items():
        if not hasattr(module, attr):
            raise ComponentError(f"component {name} must define {attr}: see components/README.md")
        if params is None:
            continue
        obj = getattr(module, attr)
        if not callable(obj):
            raise ComponentError(f"component {name}: {attr} must be callable")
        signature = inspect.signature(obj)
        have = [p for p in signature.parameters if p != "self"][: len(params)]
        if tuple(have) != params:
            raise ComponentError(
                f"component {name}: {attr} must take ({', '.join(params)}) as its first parameters, "
                f"it takes ({', '.join(signature.parameters)})"
            )


def load_components(component_set: ComponentSet) -> dict[str, types.ModuleType]:
    return {name: load_module(name, component_set.sources[name]) for name in COMPONENT_NAMES}
