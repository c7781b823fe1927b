"""Sphinx directives for tinygrad_sgd's documentation site (docs/conf.py loads them).

``tg-module NAME``: one public module's reference, its docstring and every name of its
``__all__``. A name that several modules export (``tg.Tensor`` is ``tinygrad_sgd.tensor.Tensor``)
is documented once, under the shortest public path that exports it; the other modules link to
it. At the end of the build, a public name documented nowhere is a warning (so, with ``-W``, an
error): a new public module needs a ``tg-module`` line in one of the ``api/*.md`` pages.

``tg-cli [COMMAND]``: the command line's help, made by its argparse parsers (never copied
text); a command without one is a warning too.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import sys
from types import ModuleType
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import tinygrad_sgd

logger = logging.getLogger(__name__)


def public_modules() -> list[ModuleType]:
    """The package and its modules that have an ``__all__`` and no private part in their path,
    shortest path first."""
    found = [tinygrad_sgd]
    for info in pkgutil.walk_packages(tinygrad_sgd.__path__, "tinygrad_sgd."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found.append(module)
    return sorted(found, key=lambda m: (m.__name__.count("."), m.__name__))


def _key(name: str, value: Any) -> tuple[Any, ...]:
    # Classes and functions are the same object wherever they are exported; a constant's
    # identity alone could coincide with another constant's (small ints are shared).
    if inspect.isclass(value) or inspect.isroutine(value):
        return (id(value),)
    return (name, id(value))


def canonical_names() -> dict[tuple[Any, ...], str]:
    """Each public object's documented path.

    A class or function: the shortest public path that exports it (``tg.Tensor``), unless that
    is also a module's name (``tinygrad_sgd.gradcheck``, the module, holds ``gradcheck``). A
    constant: the deepest, the module that defines it, where its ``#:`` comment is.
    """
    where: dict[tuple[Any, ...], str] = {}
    modules = public_modules()
    module_names = {m.__name__ for m in modules}
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            path = f"{module.__name__}.{name}"
            if inspect.ismodule(value) or path in module_names:
                continue
            if inspect.isclass(value) or inspect.isroutine(value):
                where.setdefault(_key(name, value), path)
            else:
                where[_key(name, value)] = path
    return where


def _auto(path: str, value: Any) -> str:
    if inspect.isclass(value):
        if issubclass(value, BaseException):
            return f".. autoexception:: {path}\n   :members:\n"
        return f".. autoclass:: {path}\n   :members:\n   :show-inheritance:\n"
    if inspect.isroutine(value):
        return f".. autofunction:: {path}\n"
    return f".. autodata:: {path}\n"


class ModuleDirective(SphinxDirective):
    """``tg-module NAME``: a public module's docstring and every name in its ``__all__``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(self.arguments[0])
        canonical = canonical_names()
        lines = [f".. automodule:: {module.__name__}", ""]
        elsewhere = []
        for name in module.__all__:
            value = getattr(module, name)
            path = f"{module.__name__}.{name}"
            if inspect.ismodule(value):
                elsewhere.append(f":mod:`{name} <{value.__name__}>`")
            elif canonical[_key(name, value)] == path:
                lines += [_auto(path, value), ""]
            else:
                elsewhere.append(f":obj:`{name} <{canonical[_key(name, value)]}>`")
        if elsewhere:
            lines += ["Also exported here, documented under another path: " + ", ".join(elsewhere)]
        rendered = self.env.domaindata.setdefault("tg_docs", {}).setdefault("modules", set())
        rendered.add(module.__name__)
        return self.parse_text_to_nodes("\n".join(lines))


class CliDirective(SphinxDirective):
    """``tg-cli [COMMAND]``: the ``--help`` of ``tinygrad-sgd`` or of one of its commands."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from tinygrad_sgd.cli import build_parser

        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width
        try:
            parser = build_parser()
            if self.arguments:
                sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
                parser = sub.choices[self.arguments[0]]
                rendered = self.env.domaindata.setdefault("tg_docs", {})
                rendered.setdefault("commands", set()).add(self.arguments[0])
            text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        return [nodes.literal_block(text=text)]


def _lookup(path: str) -> tuple[bool, Any]:
    """(found, object) for a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                value = getattr(value, attr)
        except AttributeError:
            return False, None
        return True, value
    return False, None


def resolve_by_import(app: Sphinx, env: Any, node: Any, contnode: nodes.Node) -> Any:
    """A Python reference Sphinx did not find: import it from the docstring's module or class.

    A public object, or a member of one, links to where it is documented (``:func:`gradcheck```
    written in module ``tinygrad_sgd.gradcheck`` is ``tg.gradcheck``); a private one that exists
    (a private base class, a type alias) stays plain text. A name that does not exist at all
    stays a warning: a broken reference.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [f"{module}.{cls}.{target}"] if module and cls else []
    candidates += [f"{module}.{target}"] if module else []
    # A docstring is rendered where its object is documented (tg.load's in module tinygrad_sgd),
    # but its names are those of the module that defines it: try the package's every module.
    package = sorted(name for name in sys.modules if name.startswith("tinygrad_sgd"))
    candidates += [target] + [f"{name}.{target}" for name in package]
    canonical = canonical_names()
    domain = env.get_domain("py")
    for path in candidates:
        found, value = _lookup(path)
        if not found:
            continue
        head, _, attr = path.rpartition(".")
        owner_found, owner = _lookup(head)
        if owner_found and inspect.isclass(owner) and _key(owner.__name__, owner) in canonical:
            documented = f"{canonical[_key(owner.__name__, owner)]}.{attr}"
        elif _key(attr, value) in canonical:
            documented = canonical[_key(attr, value)]
        elif inspect.ismodule(value):
            documented = value.__name__
        else:
            return contnode
        ref = domain.resolve_xref(
            env, node["refdoc"], app.builder, "obj", documented, node, contnode
        )
        return ref if ref is not None else contnode
    return None


def check_every_name_documented(app: Sphinx, env: Any) -> None:
    rendered = env.domaindata.get("tg_docs", {}).get("modules", set())
    canonical = canonical_names()
    missing = sorted(p for p in canonical.values() if p.rpartition(".")[0] not in rendered)
    for path in missing:
        logger.warning("public name %s is on no page: add its module to an api/*.md page", path)
    from tinygrad_sgd.cli import COMMANDS

    commands = env.domaindata.get("tg_docs", {}).get("commands", set())
    for name in sorted(set(COMMANDS) - commands):
        logger.warning("command %r has no tg-cli directive in cli.md", name)


def process_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A public constant without a ``#:`` comment (autodoc then shows its type's docstring, a
    dict's or a tuple's) is a warning.

    Docstrings write |x| for an absolute value and ‖x‖ for a norm, never an rST substitution:
    the bars are escaped outside ``literals`` and doctest lines.
    """
    if (
        what == "data"
        and type(obj).__doc__
        and "\n".join(lines).strip() == inspect.cleandoc(type(obj).__doc__)
    ):
        lines.clear()
        logger.warning("public constant %s has no #: comment in its module", name)
    for i, line in enumerate(lines):
        if "|" in line and not line.lstrip().startswith((">>>", "...")):
            parts = line.split("``")
            lines[i] = "``".join(p if k % 2 else p.replace("|", "\\|") for k, p in enumerate(parts))


REPOSITORY = "https://github.com/tinygrad-sgd/tinygrad-sgd/blob/main/"  # pyproject's Source


def links_into_repository(app: Sphinx, docname: str, source: list[str]) -> None:
    """docs/*.md link to the code as ``../tinygrad_sgd/...`` (right on GitHub); on the site
    those links go to the repository."""
    source[0] = source[0].replace("](../", "](" + REPOSITORY)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("tg-module", ModuleDirective)
    app.add_directive("tg-cli", CliDirective)
    app.connect("env-check-consistency", check_every_name_documented)
    app.connect("missing-reference", resolve_by_import)
    app.connect("autodoc-process-docstring", process_docstring)
    app.connect("source-read", links_into_repository)
    return {"parallel_read_safe": False, "env_version": 1}
