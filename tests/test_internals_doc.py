"""docs/internals.md: its numbers and figures are what the engine computes today."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "make_internals_figures", DOCS / "make_internals_figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guide_and_figures_are_current(script):
    assert script.check() == []


def test_engine_matches_bp1_to_bp4_and_the_step_helps(script):
    r = script.compute()
    assert r["bp_worst"] < 1e-12
    assert [row[1] for row in r["bp_rows"]] == ["BP1", "BP2", "BP3", "BP3", "BP4", "BP4"]
    # the backward order the guide walks through
    assert r["trace_ops"] == [
        "Mul", "Sum", "PowScalar", "Sub", "Sigmoid", "Add", "MatMul", "Sigmoid", "Add", "MatMul",
    ]  # fmt: skip
    before, after = r["step"]
    assert after < before


def test_check_notices_a_stale_number(script, tmp_path, monkeypatch):
    guide = tmp_path / "internals.md"
    text = (DOCS / "internals.md").read_text(encoding="utf-8")
    c = re.search(r"C = (0\.\d{6}) before the step", text)
    assert c is not None
    guide.write_text(text.replace(c.group(1), "0.123456"), encoding="utf-8")
    for name in ("forward", "backward"):
        for ext in ("dot", "svg"):
            shutil.copy(DOCS / f"internals_{name}.{ext}", tmp_path)
    monkeypatch.setattr(script, "GUIDE", guide)
    monkeypatch.setattr(script, "DOCS", tmp_path)
    assert script.check() == ["generated blocks of internals.md are out of date"]
    (tmp_path / "internals_backward.svg").write_text("<svg></svg>", encoding="utf-8")
    problems = script.check()
    assert any("internals_backward.svg lacks node text" in p for p in problems)


def test_guide_code_block_computes_the_guide_cost():
    text = (DOCS / "internals.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    cost = re.search(r"\| C = ½‖y − a3‖² \| `(\S+)` \|", text).group(1)
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nprint(f'{C.item():.6f}')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == cost


def test_guide_links_point_to_existing_files():
    text = (DOCS / "internals.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((?!http|#)([^)]+)\)", text)
    assert len(links) >= 8
    for link in links:
        assert (DOCS / link).exists(), link


def test_retain_grad_of_z_is_delta_over_m_for_the_averaged_cost():
    """The guide's sentence: z.grad is δ for one example and δ/m (row by row) for the cost
    averaged over a mini-batch of m; δ = (a − y) ⊙ σ'(z), the book's BP1 for C_x = ½‖y − a‖²."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.random((4, 2))
    w = tg.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    z = x @ w.T
    z.retain_grad()
    a = z.sigmoid()
    tg.nn.F.quadratic_cost(a, y).backward()  # C = 1/2m Σ_x ‖y − a‖²
    s = 1 / (1 + np.exp(-z.data))
    delta = (s - y) * s * (1 - s)
    np.testing.assert_allclose(z.grad.data, delta / 4, rtol=1e-13)
