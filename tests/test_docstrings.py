"""Every public name has a docstring: each function, class, public method and property of every
public module (no part of its path private): the names of its ``__all__``, or, in a module
without one (the command line's), every name not starting with ``_`` that it defines.

A method that overrides a documented method of a base class of the package inherits its
docstring (``inspect.getdoc``, as the documentation site shows it): an op's ``forward`` and
``backward`` are described by ``Function``'s, its formula by the op's class docstring.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

import tinygrad_sgd

PACKAGE = tinygrad_sgd.__name__


def public_modules() -> list[ModuleType]:
    found = [tinygrad_sgd]
    for info in pkgutil.walk_packages(tinygrad_sgd.__path__, PACKAGE + "."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            found.append(importlib.import_module(info.name))
    return found


def public_names(module: ModuleType) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]


def ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == PACKAGE


def undocumented_members(cls: type) -> list[str]:
    """The public methods and properties of ``cls`` (its own and those it inherits from the
    package's classes) without a docstring."""
    missing = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next(base for base in cls.__mro__ if name in vars(base))
        if not ours(owner):
            continue  # inherited from object, Exception, NamedTuple, ...
        attr = vars(owner)[name]
        if isinstance(attr, property):
            documented = bool(attr.__doc__)
        elif isinstance(attr, (staticmethod, classmethod)) or inspect.isfunction(attr):
            documented = bool(inspect.getdoc(getattr(cls, name)))
        else:
            continue  # a class attribute: data, documented by the class
        if not documented:
            missing.append(f"{owner.__module__}.{owner.__qualname__}.{name}")
    return missing


def undocumented(modules: list[ModuleType]) -> list[str]:
    missing: set[str] = set()
    for module in modules:
        if not module.__doc__:
            missing.add(module.__name__ + " (the module)")
        for name in public_names(module):
            value = getattr(module, name)
            if not (inspect.isclass(value) or inspect.isroutine(value)) or not ours(value):
                continue  # modules (checked themselves), constants, type aliases
            if not inspect.getdoc(value) or (inspect.isclass(value) and not value.__doc__):
                missing.add(f"{value.__module__}.{value.__qualname__}")
            if inspect.isclass(value):
                missing.update(undocumented_members(value))
    return sorted(missing)


def test_every_public_name_has_a_docstring() -> None:
    missing = undocumented(public_modules())
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_the_check_finds_a_missing_docstring() -> None:
    """The walk itself: a module with an undocumented function, class, method and property."""
    module = ModuleType(PACKAGE + ".fake", "A module.")

    def documented() -> None:
        """Yes."""

    def bare() -> None:
        pass

    class Thing:
        """A thing."""

        def method(self) -> None:
            pass

        def _private(self) -> None:
            pass

        @property
        def value(self) -> int:
            return 1

        @staticmethod
        def make() -> None:
            """Made."""

    class Bare:
        pass

    for obj in (documented, bare, Thing, Bare):
        obj.__module__ = module.__name__
        setattr(module, obj.__name__, obj)
    module.__all__ = ["documented", "bare", "Thing", "Bare"]  # type: ignore[attr-defined]
    prefix = module.__name__ + "."
    local = "test_the_check_finds_a_missing_docstring.<locals>."
    assert undocumented([module]) == sorted(
        prefix + local + name for name in ["Bare", "Thing.method", "Thing.value", "bare"]
    )
