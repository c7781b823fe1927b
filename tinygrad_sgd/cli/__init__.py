"""Command line: ``python -m tinygrad_sgd {train,gradcheck,graph}`` (also ``tinygrad-sgd``).

All argument parsing lives in this package, one module per sub-command (``train.py``,
``gradcheck.py``, ``graph.py``), each with two functions: ``add_arguments(parser)`` and
``run_command(args) -> int`` (the exit status), which calls the library's plain functions with
keyword arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from .. import __version__
from . import gradcheck, graph, train

# name -> (module with add_arguments and run_command, one-line help)
COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "train": (train, "train the book's network with mini-batch SGD"),
    "gradcheck": (
        gradcheck,
        "check every built-in operation's gradient against finite differences",
    ),
    "graph": (graph, "print or write the computation graph of a small expression"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-sgd`` parser with one sub-parser per command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-sgd",
        description="Reverse-mode autodiff on NumPy, and the networks of Nielsen's book.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run_command)
    return parser


@contextlib.contextmanager
def library_reports_on_stderr() -> Iterator[None]:
    """While a command runs, the library's log records (e.g. which MNIST mirror is being
    tried) are printed on stderr as bare lines, at INFO and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("tinygrad_sgd")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tinygrad_sgd`` and the ``tinygrad-sgd`` script."""
    args = build_parser().parse_args(argv)
    try:
        with library_reports_on_stderr():
            return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
