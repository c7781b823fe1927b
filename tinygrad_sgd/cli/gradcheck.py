"""``python -m tinygrad_sgd gradcheck``: the options of the built-in operations' gradient check;
the check itself is :func:`tinygrad_sgd.testing.command.run`."""

from __future__ import annotations

import argparse

from ..testing.checker import ATOL, EPS, RTOL
from ..testing.command import DEFAULT_EXAMPLES, run
from ._options import seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tinygrad-sgd gradcheck``."""
    parser.add_argument(
        "--ops",
        metavar="NAMES",
        default=None,
        help="comma-separated operation names or shell patterns (e.g. 'matmul*,softmax'); "
        "default: all",
    )
    parser.add_argument(
        "--examples",
        "-n",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"generated inputs per operation (default {DEFAULT_EXAMPLES})",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="also check the OpSpec rows in the OPS attribute of module NAME (repeatable)",
    )
    parser.add_argument(
        "--first-order-only", action="store_true", help="skip the second-derivative checks"
    )
    parser.add_argument("--list", action="store_true", help="list the operations and exit")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="print the full report of every failure"
    )
    parser.add_argument(
        "--atol", type=float, default=ATOL, help=f"absolute tolerance (default {ATOL:g})"
    )
    parser.add_argument(
        "--rtol", type=float, default=RTOL, help=f"relative tolerance (default {RTOL:g})"
    )
    parser.add_argument(
        "--eps", type=float, default=EPS, help=f"finite-difference step (default {EPS:g})"
    )


def run_command(args: argparse.Namespace) -> int:
    """Run the check with the parsed options; returns the exit status."""
    return run(
        select=args.ops,
        examples=args.examples,
        seed=args.seed,
        modules=args.module,
        first_order_only=args.first_order_only,
        list_only=args.list,
        verbose=args.verbose,
        atol=args.atol,
        rtol=args.rtol,
        eps=args.eps,
    )
