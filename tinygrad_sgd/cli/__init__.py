"""Command line: ``python -m tinygrad_sgd {train,gradcheck,graph}`` (also ``tinygrad-sgd``).

All argument parsing lives in this package, one module per sub-command (``train.py``,
``gradcheck.py``, ``graph.py``), each with two functions: ``add_arguments(parser)`` and
``run_command(args) -> int`` (the exit status), which calls the library's plain functions with
keyword arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("tinygrad_sgd.cli.train", "train the book's network with mini-batch SGD"),
    "gradcheck": (
        "tinygrad_sgd.cli.gradcheck",
        "check every built-in operation's gradient against finite differences",
    ),
    "graph": (
        "tinygrad_sgd.cli.graph",
        "print or write the computation graph of a small expression",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-sgd",
        description="Reverse-mode autodiff on NumPy, and the networks of Nielsen's book.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tinygrad_sgd`` and the ``tinygrad-sgd`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
