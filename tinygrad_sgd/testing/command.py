"""``python -m tinygrad_sgd gradcheck``: check every built-in operation on generated inputs.

For each row of :data:`~tinygrad_sgd.testing.op_table.OP_TABLE` (or those chosen with ``--ops``)
the command draws ``--examples`` inputs from NumPy's generator (``--seed``; Hypothesis is not
needed), runs :func:`~tinygrad_sgd.testing.checker.check_case` on each and prints one line per
operation: the number of cases, the worst absolute error |a − n| and relative error
|a − n| / max(|n|, atol) of the first-order gradients (a analytic, n finite differences), and
the first- and second-order verdicts.  The exit status is 1 if anything failed, else 0.
:func:`run` does all this; the command's options are parsed in :mod:`tinygrad_sgd.cli.gradcheck`.

Your own operations: ``--module NAME`` imports the module ``NAME`` (from the current directory or
the import path, e.g. ``PYTHONPATH``) and checks the
:class:`~tinygrad_sgd.testing.op_table.OpSpec` rows in its ``OPS`` attribute (a list or
tuple) after the built-in ones, so ``--ops`` can select them::

    python -m tinygrad_sgd gradcheck --module myops --ops 'cube*'

Example output::

    operation            cases   max abs err   max rel err   1st order   2nd order
    add                     10       6.7e-10       1.1e-09   ok          ok
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from ..gradcheck import _check_settings
from .checker import ATOL, EPS, RTOL, CaseReport, check_case
from .draw import NumpyDraw
from .op_table import OP_TABLE, OpSpec, find_ops

DEFAULT_EXAMPLES = 25


def load_module_ops(name: str) -> list[OpSpec]:
    """The rows of ``module.OPS`` for ``--module``; a clear ``ValueError`` when unusable.

    The module is looked for on the import path with the current directory first, as
    ``python -m`` and ``python script.py`` users expect, also from the ``tinygrad-sgd`` script
    and ``python -P`` (which leave the current directory out): ``gradcheck --module mymod`` run
    where ``mymod.py`` is finds it.
    """
    cwd = os.getcwd()
    added = "" not in sys.path and cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise ValueError(f"--module {name}: cannot import it ({e})") from None
    finally:
        if added:
            sys.path.remove(cwd)
    ops = getattr(module, "OPS", None)
    if not isinstance(ops, (list, tuple)) or not all(isinstance(o, OpSpec) for o in ops):
        raise ValueError(
            f"--module {name}: the module must define OPS, a list or tuple of "
            "tinygrad_sgd.testing.OpSpec"
        )
    return list(ops)


@dataclass
class OpSummary:
    """The line printed for one operation."""

    name: str
    cases: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    first_ok: bool = True
    second_ok: bool | None = None  # None: not applicable
    first_failure: str = ""

    def add(self, r: CaseReport) -> None:
        """Count one case's report into the operation's line."""
        self.cases += 1
        self.max_abs = max(self.max_abs, r.first.max_abs_err)
        self.max_rel = max(self.max_rel, r.first.max_rel_err)
        if r.second is not None:
            self.second_ok = (self.second_ok is not False) and r.second.passed
        ok = r.first_passed and r.second_passed is not False
        if not r.first_passed:
            self.first_ok = False
        if not ok and not self.first_failure:
            self.first_failure = r.message()

    def fail(self, message: str) -> None:
        """Count one case that failed before it could be checked (``message`` says why)."""
        self.cases += 1
        self.first_ok = False
        if not self.first_failure:
            self.first_failure = message

    @property
    def passed(self) -> bool:
        """Every case passed at first and (where checked) second order."""
        return self.first_ok and self.second_ok is not False


def _verdict(flag: bool | None) -> str:
    return "n/a" if flag is None else "ok" if flag else "FAIL"


def check_ops(
    ops: Sequence[OpSpec],
    examples: int,
    seed: int,
    second_order: bool = True,
    eps: float = EPS,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> list[OpSummary]:
    """Run ``examples`` generated cases of each op; each op's generator is seeded by (seed, name),
    so choosing a subset with ``--ops`` reproduces the same inputs.  ``eps`` must be a finite
    number > 0 and ``atol``/``rtol`` finite numbers ≥ 0 (``ValueError`` naming the argument); a
    non-finite gradient, analytic or numeric, fails its op."""
    _check_settings(eps, atol, rtol, "check_ops: ")
    out = []
    for spec in ops:
        summary = OpSummary(spec.name)
        draw = NumpyDraw([seed, _stable_hash(spec.name)])
        for j in range(examples):
            try:
                case = spec.draw_case(draw)
                report = check_case(
                    spec,
                    case,
                    seed=seed + j,
                    eps=eps,
                    atol=atol,
                    rtol=rtol,
                    second_order=spec.second_order and second_order,
                )
            except Exception as e:  # a crashing op is a failing op: report it, go on
                summary.fail(
                    f"op {spec.name!r} raised {type(e).__name__}: {e}\n"
                    + "".join(traceback.format_exception(e)[-3:])
                )
                continue
            summary.add(report)
        if not (spec.second_order and second_order):
            summary.second_ok = None
        out.append(summary)
    return out


def _stable_hash(name: str) -> int:
    """A seed from an op's name that is the same in every run (``hash`` is salted)."""
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (2**31)
    return h


def format_table(rows: Sequence[OpSummary]) -> str:
    """The ``gradcheck`` command's table: one line per operation, its cases, errors and verdicts."""
    width = max([len("operation")] + [len(r.name) for r in rows])
    head = (
        f"{'operation':<{width}}  {'cases':>5}  {'max abs err':>11}  {'max rel err':>11}  "
        f"{'1st order':<9}  {'2nd order':<9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.cases:>5}  {r.max_abs:>11.1e}  {r.max_rel:>11.1e}  "
            f"{_verdict(r.first_ok):<9}  {_verdict(r.second_ok):<9}"
        )
    return "\n".join(lines)


def run(
    *,
    select: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
    seed: int = 0,
    modules: Sequence[str] = (),
    first_order_only: bool = False,
    list_only: bool = False,
    verbose: bool = False,
    atol: float = ATOL,
    rtol: float = RTOL,
    eps: float = EPS,
) -> int:
    """Check the operations of the table (and of ``modules``' ``OPS``) chosen by ``select``
    (comma-separated names or shell patterns; None: all) on ``examples`` generated inputs each,
    print the table and return the exit status (0 all passed, 1 a failure, 2 bad arguments).
    ``list_only``: print the chosen operations' names instead."""
    if examples < 1:
        print("gradcheck: --examples must be at least 1", file=sys.stderr)
        return 2
    try:
        _check_settings(eps, atol, rtol, "", names=("--eps", "--atol", "--rtol"))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        table = list(OP_TABLE)
        for name in modules:
            table += load_module_ops(name)
        names = [n.strip() for n in select.split(",") if n.strip()] if select else None
        ops = find_ops(names, table) if names else table
    except ValueError as e:
        print(f"gradcheck: {e}", file=sys.stderr)
        return 2
    if list_only:
        for op in ops:
            print(op.name)
        return 0
    start = time.perf_counter()
    rows = check_ops(
        ops,
        examples,
        seed,
        second_order=not first_order_only,
        eps=eps,
        atol=atol,
        rtol=rtol,
    )
    print(format_table(rows))
    failed = [r for r in rows if not r.passed]
    elapsed = time.perf_counter() - start
    print(
        f"\n{len(rows)} operations, {sum(r.cases for r in rows)} cases in {elapsed:.1f} s; "
        f"finite differences with eps={eps:g}, pass when |analytic - numeric| <= "
        f"{atol:g} + {rtol:g}*|numeric|"
    )
    if failed:
        print(f"FAILED: {', '.join(r.name for r in failed)}")
        for r in failed:
            text = r.first_failure if verbose else _first_lines(r.first_failure, 25)
            print(f"\n{text}")
        return 1
    print("all passed")
    return 0


def _first_lines(text: str, n: int) -> str:
    lines = text.splitlines()
    if len(lines) <= n:
        return text
    return "\n".join(lines[:n] + [f"... ({len(lines) - n} more lines; use --verbose)"])
