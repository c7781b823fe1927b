"""Helpers shared by the benchmark scripts: machine description, medians, tables, peak memory.

Not part of the package and not part of the test suite.  Timings on a shared machine are noisy,
so every script interleaves its rows, repeats them in rounds and reports medians and ratios to a
baseline measured in the same round.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (how busy the shared machine was)."""
    try:
        a, b, c = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{a:.2f} {b:.2f} {c:.2f}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(extra: Sequence[str] = ()) -> str:
    """Python, NumPy and (when importable) the other libraries being compared."""
    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    from importlib import metadata

    for name in extra:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def machine_header(extra: Sequence[str] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}
    lines = [
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}",
        f"versions: {versions(extra)}",
        f"thread env: {env or 'none set (library defaults)'}",
        f"load average at start (1/5/15 min): {load_average()}",
    ]
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into README.md)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(cells[0]), sep] + [fmt(r) for r in cells[1:]])


def max_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    NOTE: on Linux ``ru_maxrss`` survives fork and exec, so a child started by a big parent
    reports the parent's peak; ``VmHWM`` in /proc/self/status belongs to this process alone.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def run_child(args: Sequence[str], timeout: float = 900) -> str:
    """Run this Python on ``args`` and return its standard output (raises on failure)."""
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    return proc.stdout
