"""``python -m tinygrad_sgd graph``: print or write the computation graph of a small expression."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from .._atomic import NotAFileError, atomic_write
from ..viz import (
    ExpressionError,
    GraphvizError,
    build_expression,
    neuron_graph,
    render,
    retain_grads,
    to_dot,
    to_text,
)
from ..viz.render import _FORMATS
from ._options import seed


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number (in {text!r})") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be finite")
    return name.strip(), v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m tinygrad_sgd graph``."""
    parser.add_argument(
        "expr",
        nargs="?",
        metavar="EXPR",
        help="an expression such as 'sigmoid(w*x + b)'; its variables become scalar leaves. "
        "Default: the neuron a = σ(w·x + b) with its quadratic cost C = ½(y − a)². "
        "Put '--' before an expression that starts with '-'.",
    )
    parser.add_argument(
        "--format", choices=("dot", "text"), default="dot", help="output format (default: dot)"
    )
    parser.add_argument(
        "--backward",
        action="store_true",
        help="run backward first and show ‖grad‖ on every node",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write to FILE (atomically) instead of standard output; a .svg, .png or .pdf name "
        "draws the picture with Graphviz",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="seed for the variables' values (default: 0)"
    )
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=NUMBER",
        help="give a variable a value (repeatable)",
    )


def run_command(args: argparse.Namespace) -> int:
    """Build the graph, optionally backpropagate, and print or write it.  Exit status: 0 on
    success, 2 for a rejected expression, 1 when Graphviz is needed and missing or fails."""
    prog = "tinygrad-sgd graph"
    try:
        if args.expr is None:
            if args.values:
                raise ExpressionError(
                    "--set applies to an EXPR; the default neuron has fixed values"
                )
            root, names = neuron_graph()
        else:
            root, names = build_expression(args.expr, dict(args.values), seed=args.seed)
    except ExpressionError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if args.backward:
        retain_grads(root)
        with np.errstate(all="ignore"):
            root.backward(retain_graph=True)
    if args.output:
        out = Path(args.output)
        suffix = out.suffix.lstrip(".").lower()
        try:
            if suffix in _FORMATS:
                render(root, out, show_grad=args.backward, params=names)
            else:
                fn = to_dot if args.format == "dot" else to_text
                text = fn(root, show_grad=args.backward, params=names)
                atomic_write(out, text.encode("utf-8"))
        except GraphvizError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        except NotAFileError as e:  # its message names the path
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"{prog}: error: cannot write {out}: {e}", file=sys.stderr)
            return 1
        print(f"wrote {out}")
        return 0
    fn = to_dot if args.format == "dot" else to_text
    sys.stdout.write(fn(root, show_grad=args.backward, params=names))
    return 0
