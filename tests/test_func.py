"""tinygrad_sgd.func: every transform against float64 finite differences on the op table's
functions composed two at a time (Hypothesis), the identities between the transforms, nesting,
grad mode and ``.grad`` left alone, the errors, and the book's network against BP1-BP4.

Tolerances are the op checker's (``tinygrad_sgd.testing``): central differences with ε = 1e-6 in
float64 are accurate to about 1e-9 relative on the table's domains, so rtol = 1e-5, atol = 1e-7
leave a margin of ~100 and still flag a derivative off by 0.1 %.  Identities between two
analytic routes (hvp vs hessian @ v, jvp vs jacobian @ v, H vs Hᵀ) differ only by rounding:
RTOL_EXACT = 1e-9 (sums of at most a few hundred float64 products, each rounded to 1e-16).
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, func
from tinygrad_sgd.testing import ATOL, EPS, OP_TABLE, RTOL, Domain, HypothesisDraw, OpSpec
from tinygrad_sgd.testing.op_table import Case

RTOL_EXACT = 1e-9
ATOL_EXACT = 1e-11


def close(actual: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# ---- finite differences, in float64, knowing nothing of derivatives --------------------------


def numeric_jacobian(fn: Callable[..., Tensor], arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """∂fn/∂xᵢ by central differences, one array of shape out.shape + xᵢ.shape per input."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def value(xs: Sequence[np.ndarray]) -> np.ndarray:
        with tg.no_grad():
            return np.array(fn(*[Tensor(x) for x in xs]).data, dtype=np.float64)

    out_shape = value(arrays).shape
    jacs = []
    for i, x in enumerate(arrays):
        J = np.empty(out_shape + x.shape)
        for j in np.ndindex(x.shape):
            up = [a.copy() for a in arrays]
            down = [a.copy() for a in arrays]
            up[i][j] += EPS
            down[i][j] -= EPS
            J[(..., *j)] = (value(up) - value(down)) / (2 * EPS)
        jacs.append(J)
    return jacs


def engine_gradient(f: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The concatenated first-order gradient of scalar f from the engine's ordinary backward
    pass (no create_graph, no transform): what finite differences of the Hessian are taken of."""

    def g(*xs: Tensor) -> Tensor:
        leaves = [Tensor(x.data, requires_grad=True) for x in xs]
        with tg.enable_grad():  # (finite differences call it under no_grad)
            out = f(*leaves)
        grads = tg.autograd.grad(out, leaves, allow_unused=True)
        return Tensor(np.concatenate([gr.data.ravel() for gr in grads]))

    return g


def flat(blocks: Sequence[np.ndarray], lead: tuple[int, ...] = ()) -> np.ndarray:
    """Jacobian blocks (lead + xᵢ.shape each) side by side as one lead + (Σ nᵢ,) array."""
    k = len(lead)
    return np.concatenate([np.reshape(b, lead + (int(np.prod(b.shape[k:])),)) for b in blocks], -1)


# ---- the op table's functions, composed two at a time ----------------------------------------


def first_domain(spec: OpSpec, case: Case) -> Domain:
    dom = spec.domain(case.params) if callable(spec.domain) else spec.domain
    return dom if isinstance(dom, Domain) else dom[0]


class Composite:
    """h(x₁…, x₂…) = op2(x₂₀ + δ tanh⟨r, op1(x₁…)⟩, x₂₁…): op2 after op1, with op1's output
    fed into op2's first input.  A common shift of at most δ ≤ half the domain's margin (and
    ≤ 0.005) keeps op2's inputs away from its kinks, poles and ties, so the composite is smooth
    where it is evaluated.  f = ⟨w, h⟩ is a scalar version with random weights w."""

    def __init__(self, spec1: OpSpec, case1: Case, spec2: OpSpec, case2: Case, seed: int):
        self.spec1, self.case1, self.spec2, self.case2 = spec1, case1, spec2, case2
        self.n1 = len(case1.arrays)
        self.arrays = [*case1.arrays, *case2.arrays]
        self.delta = min(0.005, first_domain(spec2, case2).margin / 2)
        rng = np.random.default_rng(seed)
        with tg.no_grad():
            y1 = spec1.fn(*[Tensor(a) for a in case1.arrays], **case1.params)
        self.r = rng.standard_normal(y1.shape) / np.sqrt(max(y1.size, 1))
        with tg.no_grad():
            out = self.h(*[Tensor(a) for a in self.arrays])
        self.out_shape = out.shape
        self.w = rng.standard_normal(out.shape)
        self.tangents = [rng.standard_normal(a.shape) for a in self.arrays]
        self.cotangent = rng.standard_normal(out.shape)

    def h(self, *xs: Tensor) -> Tensor:
        y1 = self.spec1.fn(*xs[: self.n1], **self.case1.params)
        s = (y1 * self.r).sum().tanh()
        x2 = list(xs[self.n1 :])
        x2[0] = x2[0] + self.delta * s
        return self.spec2.fn(*x2, **self.case2.params)

    def f(self, *xs: Tensor) -> Tensor:
        return (self.h(*xs) * self.w).sum()

    def __repr__(self) -> str:
        return f"{self.spec2.name} ∘ {self.spec1.name}"


# Every row of the table is the outer function of some pairs; the inner one is drawn from the
# whole table (offset from the outer row, so that derandomized runs still vary it), and the
# inputs of both from their rows.  A few examples per row keeps the 2 x 78 rows within seconds.
PAIRS_PER_ROW = min(settings.default.max_examples, 3)


@st.composite
def composites(draw: Any, outer: int) -> Composite:
    spec2 = OP_TABLE[outer]
    spec1 = OP_TABLE[(outer + draw(st.integers(0, len(OP_TABLE) - 1))) % len(OP_TABLE)]
    d = HypothesisDraw(draw)
    return Composite(spec1, spec1.draw_case(d), spec2, spec2.draw_case(d), d.seed())


ROWS = pytest.mark.parametrize("outer", range(len(OP_TABLE)), ids=[s.name for s in OP_TABLE])


def describe(c: Composite) -> str:
    return f"{c!r}\n{c.spec1.name}:\n{c.case1.describe()}\n{c.spec2.name}:\n{c.case2.describe()}"


def everything(c: Composite) -> tuple[int, ...]:
    return tuple(range(len(c.arrays)))


@ROWS
@settings(max_examples=PAIRS_PER_ROW)
@given(data=st.data())
def test_grad_vjp_jacobian_jvp_match_finite_differences(outer: int, data: Any) -> None:
    c = data.draw(composites(outer))
    note = describe(c)
    J = numeric_jacobian(c.h, c.arrays)  # blocks of shape out + xᵢ
    n_out, n_in = int(np.prod(c.out_shape)), sum(a.size for a in c.arrays)
    J_flat = flat(J, c.out_shape).reshape(n_out, n_in)
    argnums = everything(c)

    # grad of the scalar ⟨w, h⟩: wᵀJ
    grads = func.grad(c.f, argnums=argnums)(*c.arrays)
    for i, (g, Ji) in enumerate(zip(grads, J)):
        assert g.shape == c.arrays[i].shape, note
        np.testing.assert_allclose(
            g.numpy(), np.tensordot(c.w, Ji, axes=c.w.ndim), RTOL, ATOL, err_msg=note
        )

    # vjp with a random cotangent u: uᵀJ
    out, pull = func.vjp(c.h, *c.arrays)
    assert out.shape == c.out_shape and not out.requires_grad, note
    for g, Ji in zip(pull(c.cotangent), J):
        np.testing.assert_allclose(
            g.numpy(), np.tensordot(c.cotangent, Ji, axes=c.cotangent.ndim), RTOL, ATOL, err_msg=note
        )

    # jacobian, every block
    jac = func.jacobian(c.h, argnums=argnums)(*c.arrays)
    for Ja, Ji in zip(jac, J):
        assert Ja.shape == Ji.shape, note
        np.testing.assert_allclose(Ja.numpy(), Ji, RTOL, ATOL, err_msg=note)

    # jvp along random tangents: J v, and the identity jvp == jacobian @ v
    _, jv = func.jvp(c.h, tuple(c.arrays), tuple(c.tangents))
    v = np.concatenate([t.ravel() for t in c.tangents])
    assert jv.shape == c.out_shape, note
    np.testing.assert_allclose(jv.numpy().ravel(), J_flat @ v, RTOL, ATOL, err_msg=note)
    J_analytic = flat([j.numpy() for j in jac], c.out_shape).reshape(J_flat.shape)
    np.testing.assert_allclose(
        jv.numpy().ravel(), J_analytic @ v, RTOL_EXACT, ATOL_EXACT, err_msg=note
    )


@ROWS
@settings(max_examples=PAIRS_PER_ROW)
@given(data=st.data())
def test_hessian_and_hvp_match_finite_differences_and_each_other(outer: int, data: Any) -> None:
    c = data.draw(composites(outer))
    note = describe(c)
    argnums = everything(c)
    n = sum(a.size for a in c.arrays)
    # Finite differences of the engine's plain first-order gradient (as gradgradcheck does).
    H_fd = flat(numeric_jacobian(engine_gradient(c.f), c.arrays), (n,))

    H = func.hessian(c.f, argnums=argnums)(*c.arrays)
    assert len(H) == len(c.arrays) and all(len(row) == len(c.arrays) for row in H), note
    for i, row in enumerate(H):
        for j, block in enumerate(row):
            assert block.shape == c.arrays[i].shape + c.arrays[j].shape, note
    H_flat = np.concatenate(
        [np.concatenate([b.numpy().reshape(a.size, -1) for b in row], axis=1)
         for a, row in zip(c.arrays, H)]
    )  # fmt: skip
    np.testing.assert_allclose(H_flat, H_fd, RTOL, ATOL, err_msg=note)
    # symmetric (Schwarz): the two routes to ∂²f/∂xᵢ∂xⱼ differ only by rounding
    scale = np.abs(H_flat).max(initial=1.0)
    np.testing.assert_allclose(H_flat, H_flat.T, 0, ATOL_EXACT + RTOL_EXACT * scale, err_msg=note)

    value, hv = func.hvp(c.f, tuple(c.arrays), tuple(c.tangents))
    v = np.concatenate([t.ravel() for t in c.tangents])
    hv_flat = np.concatenate([h.numpy().ravel() for h in hv])
    np.testing.assert_allclose(hv_flat, H_fd @ v, RTOL, ATOL, err_msg=note)
    np.testing.assert_allclose(
        hv_flat, H_flat @ v, RTOL_EXACT, ATOL_EXACT + RTOL_EXACT * scale, err_msg=note
    )
    with tg.no_grad():
        assert value.item() == pytest.approx(c.f(*[Tensor(a) for a in c.arrays]).item(), rel=1e-12)
