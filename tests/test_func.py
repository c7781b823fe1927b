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
import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path
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
            g.numpy(),
            np.tensordot(c.cotangent, Ji, axes=c.cotangent.ndim),
            RTOL,
            ATOL,
            err_msg=note,
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


# ---- small exact examples ---------------------------------------------------------------------


def cube_sum(x: Tensor) -> Tensor:
    return (x**3).sum()  # f = Σ x³, ∇f = 3x², H = diag(6x), third derivative 6


def test_grad_and_value_and_grad_of_a_cube() -> None:
    x = np.array([1.0, -2.0, 0.5])
    close(func.grad(cube_sum)(x), 3 * x**2, 0, 0)
    value, g = func.value_and_grad(cube_sum)(x)
    assert value.item() == np.sum(x**3) and not value.requires_grad
    close(g, 3 * x**2, 0, 0)


def test_argnums_int_tuple_and_negative() -> None:
    f = lambda a, b, c: (a * b**2 * c**3).sum()  # noqa: E731
    a, b, c = 2.0, 3.0, 5.0
    assert func.grad(f)(a, b, c).item() == b**2 * c**3
    assert func.grad(f, argnums=-1)(a, b, c).item() == 3 * a * b**2 * c**2
    ga, gc = func.grad(f, argnums=(0, 2))(a, b, c)
    assert (ga.item(), gc.item()) == (b**2 * c**3, 3 * a * b**2 * c**2)
    (gb,) = func.grad(f, argnums=(1,))(a, b, c)  # a tuple argnums gives a tuple
    assert gb.item() == 2 * a * b * c**3


def test_other_arguments_pass_through_unchanged() -> None:
    seen = []

    def f(x: Tensor, name: str, scale: int = 1) -> Tensor:
        seen.append((name, scale))
        return (x * scale).sum()

    close(func.grad(f)(np.ones(2), "label", scale=3), [3.0, 3.0], 0, 0)
    assert seen == [("label", 3)]


def test_has_aux() -> None:
    def f(x: Tensor) -> tuple[Tensor, dict[str, Any]]:
        y = x * 2
        return (y**2).sum(), {"y": y, "n": 2}

    g, aux = func.grad(f, has_aux=True)(np.array([1.0, 3.0]))
    close(g, [8.0, 24.0], 0, 0)
    assert aux["n"] == 2 and not aux["y"].requires_grad
    close(aux["y"], [2.0, 6.0], 0, 0)
    (value, aux2), g2 = func.value_and_grad(f, has_aux=True)(np.array([1.0, 3.0]))
    assert value.item() == 40.0 and aux2["n"] == 2
    close(g2, g, 0, 0)


def test_vjp_fn_can_be_called_again_and_gives_one_cotangent_per_primal() -> None:
    y, pull = func.vjp(lambda a, b: a * b, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    close(y, [3.0, 8.0], 0, 0)
    for u in ([1.0, 0.0], [0.5, 2.0]):
        ga, gb = pull(np.array(u))
        close(ga, np.array(u) * [3.0, 4.0], 0, 0)  # ∂(ab)/∂a = b
        close(gb, np.array(u) * [1.0, 2.0], 0, 0)


def test_jacobian_of_tuple_outputs_and_tuple_argnums() -> None:
    x, w = np.array([0.3, -0.7]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (Jx, Jw), (Sx, Sw) = func.jacobian(lambda x, w: (w @ x, (x * x).sum()), argnums=(0, 1))(x, w)
    close(Jx, w, 0, 0)  # ∂(w x)/∂x = w
    expected_Jw = np.zeros((3, 3, 2))
    for i in range(3):
        expected_Jw[i, i] = x  # ∂(w x)ᵢ/∂w_kj = δ_ik x_j
    close(Jw, expected_Jw, 0, 0)
    close(Sx, 2 * x, 0, 0)
    close(Sw, np.zeros((3, 2)), 0, 0)  # an unused argument: zeros


def test_functions_that_ignore_their_argument_have_zero_derivatives() -> None:
    const = lambda x: Tensor(2.0)  # noqa: E731  (no graph at all)
    close(func.grad(const)(np.ones(3)), np.zeros(3), 0, 0)
    close(func.hessian(const)(np.ones(2)), np.zeros((2, 2)), 0, 0)
    close(func.jvp(lambda x: Tensor([1.0, 2.0]), (1.0,), (1.0,))[1], [0.0, 0.0], 0, 0)
    close(func.hvp(lambda x: x * 3.0, (1.0,), (1.0,))[1][0], 0.0, 0, 0)  # linear: H = 0
    close(func.jacobian(lambda x: x[x > 5])(np.array([1.0, 2.0])), np.zeros((0, 2)), 0, 0)


def test_hessian_is_jacobian_of_grad_and_hvp_needs_no_hessian() -> None:
    x = np.array([0.4, -1.1, 2.0])
    f = lambda x: (x.sin() * x.sum()).sum()  # noqa: E731
    H = func.hessian(f)(x).numpy()
    close(H, func.jacobian(func.grad(f))(x), 0, 0)
    # by hand: f = S Σ sin xᵢ, S = Σ x;  ∂²f/∂xᵢ∂xⱼ = cos xᵢ + cos xⱼ − δᵢⱼ S sin xᵢ
    expected = np.cos(x)[:, None] + np.cos(x)[None, :] - np.diag(x.sum() * np.sin(x))
    close(H, expected, RTOL_EXACT, ATOL_EXACT)
    v = np.array([1.0, -2.0, 0.5])
    close(func.hvp(f, (x,), (v,))[1][0], H @ v, RTOL_EXACT, ATOL_EXACT)
    J = func.jacobian(lambda x: x.tanh() * x.sum())(x).numpy()
    close(func.jvp(lambda x: x.tanh() * x.sum(), (x,), (v,))[1], J @ v, RTOL_EXACT, ATOL_EXACT)


def test_hessian_with_tuple_argnums_is_a_tuple_of_blocks() -> None:
    f = lambda a, b: (a**2 * b).sum()  # noqa: E731  f = Σ aᵢ² b
    (Haa, Hab), (Hba, Hbb) = func.hessian(f, argnums=(0, 1))(np.array([1.0, 2.0]), 3.0)
    close(Haa, 2 * 3.0 * np.eye(2), 0, 0)
    close(Hab, [2.0, 4.0], 0, 0)  # ∂²f/∂aᵢ∂b = 2aᵢ, shape (2,) + ()
    close(Hba, [2.0, 4.0], 0, 0)
    close(Hbb, 0.0, 0, 0)


# ---- nesting ----------------------------------------------------------------------------------


def test_grad_of_grad_of_grad() -> None:
    d3 = func.grad(func.grad(func.grad(lambda x: x**4)))
    assert d3(2.0).item() == 24 * 2.0  # (x⁴)''' = 24x


def test_jacobian_of_grad_of_hessian_nests_four_deep() -> None:
    x = np.array([0.5, -1.5])
    # f = Σ x⁴ / 4: H = diag(3x²), ∂H/∂x = third derivatives 6x on the diagonal
    T = func.jacobian(func.hessian(lambda x: (x**4).sum() / 4))(x).numpy()
    expected = np.zeros((2, 2, 2))
    for i in range(2):
        expected[i, i, i] = 6 * x[i]
    close(T, expected, RTOL_EXACT, ATOL_EXACT)


def test_an_inner_derivative_does_not_confuse_its_variable_with_the_outer_one() -> None:
    """d/dx [x · d/dy (x y)] at y = x is d/dx x² = 2x (perturbation confusion would give 4x)."""
    outer = func.grad(lambda x: x * func.grad(lambda y: x * y)(x))
    assert outer(3.0).item() == 6.0


def test_inner_transform_of_a_captured_variable_is_differentiated_by_the_outer_one() -> None:
    """The inner grad's argument is a constant; it depends on x only through the closure."""
    outer = func.grad(lambda x: func.grad(lambda y: x * y**2)(2.0))  # 2xy at y = 2 → 4x
    assert outer(5.0).item() == 4.0
    # the same through vjp_fn and jvp called inside an outer transform
    inner_vjp = lambda x: func.vjp(lambda y: x * y, 2.0)[1](1.0)[0]  # noqa: E731  = x
    assert func.grad(inner_vjp)(5.0).item() == 1.0
    inner_jvp = lambda x: func.jvp(lambda y: x * y**2, (2.0,), (1.0,))[1]  # noqa: E731  = 4x
    assert func.grad(inner_jvp)(5.0).item() == 4.0


def test_results_join_the_users_graph_when_an_argument_requires_grad() -> None:
    x = Tensor([0.3, -0.8], requires_grad=True)
    g = func.grad(cube_sum)(x)  # 3x², recorded: its graph reaches x
    assert g.requires_grad
    (g * Tensor([1.0, 2.0])).sum().backward()
    close(x.grad, [6 * 0.3 * 1.0, 6 * -0.8 * 2.0], 0, 1e-15)  # ∂(Σ 3xᵢ² cᵢ)/∂x = 6x c


def test_results_are_constants_otherwise() -> None:
    x = np.array([0.3, -0.8])
    for r in (
        func.grad(cube_sum)(x),
        func.hessian(cube_sum)(x),
        func.jacobian(lambda x: x.exp())(x),
        func.vjp(lambda x: x.exp(), x)[0],
        func.vjp(lambda x: x.exp(), x)[1](np.ones(2))[0],
        *func.jvp(lambda x: x.exp(), (x,), (x,)),
        func.hvp(cube_sum, (x,), (x,))[1][0],
    ):
        assert not r.requires_grad and r.is_leaf


# ---- grad mode, .grad and the arguments are left alone ----------------------------------------


def every_transform(x: Any) -> list[Any]:
    f = lambda x: (x.sin() * x).sum()  # noqa: E731
    return [
        func.grad(f)(x),
        func.value_and_grad(f)(x),
        func.vjp(lambda x: x.sin(), x)[1](np.ones(2)),
        func.jvp(lambda x: x.sin(), (x,), (np.ones(2),)),
        func.jacobian(lambda x: x.sin())(x),
        func.hessian(f)(x),
        func.hvp(f, (x,), (np.ones(2),)),
    ]


def values(results: Any) -> list[np.ndarray]:
    if isinstance(results, Tensor):
        return [results.numpy().copy()]
    return [v for r in results for v in values(r)]


def test_grad_fields_are_left_alone() -> None:
    x = Tensor([0.5, 1.5], requires_grad=True)
    x.grad = Tensor([7.0, 8.0])
    w = Tensor([2.0, 3.0], requires_grad=True)  # a captured parameter without a .grad
    func.grad(lambda x: (w * x).sum())(x)
    every_transform(x)
    close(x.grad, [7.0, 8.0], 0, 0)
    assert w.grad is None
    assert x.is_leaf and x.requires_grad


def test_the_users_graph_is_not_freed() -> None:
    w = Tensor([2.0, 3.0], requires_grad=True)
    h = w * w  # the user's graph, captured by f and used after the transforms ran
    every_transform(np.array([0.5, 1.5]))
    func.grad(lambda x: (h * x).sum())(np.array([0.5, 1.5]))
    func.jacobian(lambda x: h * x)(np.array([0.5, 1.5]))
    h.sum().backward()
    close(w.grad, [4.0, 6.0], 0, 0)


def test_works_inside_no_grad_and_leaves_it_on() -> None:
    x = np.array([0.5, 1.5])
    expected = values(every_transform(x))
    with tg.no_grad():
        inside = every_transform(Tensor(x, requires_grad=True))
        assert not tg.is_grad_enabled()
    for a, b in zip(values(inside), expected):
        close(a, b, 0, 0)
    assert all(not r.requires_grad for r in inside if isinstance(r, Tensor))


def test_grad_mode_is_restored_when_f_raises() -> None:
    def bad(x: Tensor) -> Tensor:
        raise KeyError("inside f")

    with tg.no_grad():
        with pytest.raises(KeyError, match="inside f"):
            func.hessian(bad)(1.0)
        assert not tg.is_grad_enabled()
    # and the nesting count is back to zero: a plain call gives constants again
    assert not func.grad(cube_sum)(np.ones(2)).requires_grad


def test_arguments_numpy_arrays_numbers_and_dtypes() -> None:
    a = np.array([1.0, 2.0])
    g = func.grad(cube_sum)(a)
    close(a, [1.0, 2.0], 0, 0)  # not mutated
    assert g.dtype == np.float64
    assert func.grad(lambda x: x**2)(3).item() == 6.0  # an int becomes float64
    assert func.grad(cube_sum)(np.array([1, 2])).dtype == np.float64  # integer arrays too
    g32 = func.grad(cube_sum)(np.array([1.0, 2.0], dtype=np.float32))
    assert g32.dtype == np.float32  # floating arrays keep their dtype
    _, jv = func.jvp(cube_sum, (np.float32(1.0),), (1.0,))  # tangents take the primal's dtype
    assert jv.dtype == np.float32


# ---- clear errors -----------------------------------------------------------------------------


def test_grad_of_a_non_scalar_output_says_so() -> None:
    with pytest.raises(ValueError, match=r"grad: f \(<lambda>\) must return one element.*\(3,\)"):
        func.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(ValueError, match=r"hessian: .*shape \(2,\)"):
        func.hessian(lambda x: x * 2)(np.ones(2))
    with pytest.raises(ValueError, match=r"hvp: .*shape \(2,\)"):
        func.hvp(lambda x: x * 2, (np.ones(2),), (np.ones(2),))


def test_a_function_that_does_not_return_a_tensor_is_named() -> None:
    def as_float(x: Tensor) -> float:
        return float(x.sum().item())

    for transform in (func.grad, func.value_and_grad, func.jacobian, func.hessian):
        with pytest.raises(TypeError, match=r"f \(as_float\) returned a float, not a Tensor"):
            transform(as_float)(np.ones(2))
    with pytest.raises(TypeError, match=r"vjp: f \(as_float\) returned a float"):
        func.vjp(as_float, np.ones(2))
    with pytest.raises(TypeError, match=r"jvp: f \(as_float\) returned a float"):
        func.jvp(as_float, (np.ones(2),), (np.ones(2),))
    with pytest.raises(TypeError, match=r"output 1 of f \(<lambda>\) returned a ndarray"):
        func.jacobian(lambda x: (x, x.numpy()))(np.ones(2))
    with pytest.raises(TypeError, match=r"dtype bool"):
        func.grad(lambda x: x > 0)(1.0)
    with pytest.raises(TypeError, match=r"has_aux=True needs f \(<lambda>\) to return a pair"):
        func.grad(lambda x: x, has_aux=True)(1.0)


@pytest.mark.parametrize(
    ("argnums", "error", "message"),
    [
        (2, ValueError, r"argnums=2 but (grad\()?f\)? was called with 2 positional argument"),
        (-3, ValueError, r"argnums=-3 .*\[-2, 2\)"),
        ((0, -2), ValueError, r"argnums=\(0, -2\) names the same argument twice"),
        ((), ValueError, r"argnums=\(\) names no argument"),
        (1.0, TypeError, r"argnums must be an int or a tuple of ints.*got 1.0"),
        ([0], TypeError, r"got \[0\]"),
        ((0, "1"), TypeError, r"got \(0, '1'\)"),
        (True, TypeError, r"got True"),
    ],
)
def test_wrong_argnums_is_named(argnums: Any, error: type, message: str) -> None:
    def f(a: Tensor, b: Tensor) -> Tensor:
        return (a * b).sum()

    for transform in (func.grad, func.value_and_grad, func.jacobian, func.hessian):
        with pytest.raises(error, match=message):
            transform(f, argnums=argnums)(1.0, 2.0)


def test_a_cotangent_of_the_wrong_shape_is_named() -> None:
    _, pull = func.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(ValueError, match=r"cotangent has shape \(2,\) but f's output has .*\(3,\)"):
        pull(np.ones(2))
    with pytest.raises(TypeError, match=r"vjp_fn: the cotangent is a str"):
        pull("ones")


def test_primals_and_tangents_are_checked() -> None:
    f = lambda x: x.sum()  # noqa: E731
    for transform in (func.jvp, func.hvp):
        with pytest.raises(TypeError, match=r"primals must be a tuple .*\(x,\), got a ndarray"):
            transform(f, np.ones(2), (np.ones(2),))
        with pytest.raises(ValueError, match=r"1 primals but 2 tangents"):
            transform(f, (np.ones(2),), (np.ones(2), np.ones(2)))
        with pytest.raises(ValueError, match=r"tangent 0 has shape \(3,\) but primal 0 .*\(2,\)"):
            transform(f, (np.ones(2),), (np.ones(3),))


def test_arguments_that_cannot_be_differentiated_are_named() -> None:
    with pytest.raises(TypeError, match=r"grad: argument 1 is a str; pass a Tensor"):
        func.grad(lambda a, b: a, argnums=1)(1.0, "x")
    with pytest.raises(TypeError, match=r"grad: argument 0 is a list"):
        func.grad(lambda a: a.sum())([1.0, 2.0])
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64; only floating"):
        func.grad(lambda a: a.sum())(Tensor(np.array([1, 2]), dtype=np.int64))
    with pytest.raises(TypeError, match=r"jvp: primal 0 is a NoneType"):
        func.jvp(lambda a: a, (None,), (1.0,))


# ---- the book's network: grad of the quadratic cost is BP1-BP4 --------------------------------


def sigma(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def backprop_by_hand(
    ws: list[np.ndarray], bs: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Chapter 2's algorithm for C = 1/2n Σₓ‖y(x) − aᴸ(x)‖², columns as examples, in NumPy."""
    n = x.shape[1]
    activations, zs = [x], []
    for w, b in zip(ws, bs):
        zs.append(w @ activations[-1] + b)  # z^l = w^l a^(l-1) + b^l
        activations.append(sigma(zs[-1]))  # a^l = σ(z^l)
    sp = [sigma(z) * (1 - sigma(z)) for z in zs]
    delta = (activations[-1] - y) / n * sp[-1]  # BP1: δᴸ = ∇ₐC ⊙ σ'(zᴸ)
    dws, dbs = [None] * len(ws), [None] * len(ws)
    for layer in range(len(ws) - 1, -1, -1):
        if layer < len(ws) - 1:
            delta = (ws[layer + 1].T @ delta) * sp[layer]  # BP2: δˡ = ((wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ'(zˡ)
        dbs[layer] = delta.sum(axis=1, keepdims=True)  # BP3: ∂C/∂bˡ = δˡ (summed over x)
        dws[layer] = delta @ activations[layer].T  # BP4: ∂C/∂wˡ = δˡ (aˡ⁻¹)ᵀ
    return dws, dbs  # type: ignore[return-value]


def test_grad_of_the_books_quadratic_cost_is_bp1_to_bp4() -> None:
    rng = np.random.default_rng(5)
    sizes = [4, 5, 3, 2]
    ws = [rng.standard_normal((m, k)) for k, m in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal((m, 1)) for m in sizes[1:]]
    x = rng.uniform(0, 1, (4, 6))  # six examples as columns
    y = np.eye(2)[:, rng.integers(0, 2, 6)]

    def cost(w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor, w4: Tensor, b4: Tensor) -> Tensor:
        a = Tensor(x)
        for w, b in ((w2, b2), (w3, b3), (w4, b4)):
            a = (w @ a + b).sigmoid()
        return ((y - a) ** 2).sum() / (2 * x.shape[1])  # C = 1/2n Σ‖y − a‖²

    params = [p for pair in zip(ws, bs) for p in pair]
    grads = func.grad(cost, argnums=tuple(range(6)))(*params)
    dws, dbs = backprop_by_hand(ws, bs, x, y)
    for k in range(3):
        close(grads[2 * k], dws[k], 1e-12, 1e-15)
        close(grads[2 * k + 1], dbs[k], 1e-12, 1e-15)


# ---- the docstrings' examples -----------------------------------------------------------------


def test_docstring_examples_run() -> None:
    failed, attempted = doctest.testmod(func, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 8 and failed == 0


def test_nothing_here_uses_private_engine_names() -> None:
    source = open(func.__file__, encoding="utf-8").read()
    assert not re.findall(r"autograd\._|\._ctx|_wrap\(|_state\b", source)


# ---- docs/internals.md, "From backprop to transforms" -----------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_guides_transform_code_runs_and_gives_its_table() -> None:
    text = (DOCS / "internals.md").read_text(encoding="utf-8")
    setup, code = re.findall(r"```python\n(.*?)```", text, re.S)[:2]
    env: dict[str, Any] = {}
    exec(setup + code, env)  # the network at the top of the guide, then the section's code
    row = re.search(r"\| ∇C · Δv .*? \| `(\S+)` \| −η ‖∇C‖² = `(\S+)` by hand \|", text)
    assert row is not None
    assert f"{env['slope'].item():.6f}" == row.group(1) == row.group(2)
    assert env["H_w3"].shape == (1, 3, 1, 3)
    w3 = re.search(r"\| ∂C/∂w3 \| `func.grad.*?` \| `(.*?)` \|", text)
    assert w3 is not None
    close(env["grads"][2].numpy().ravel(), eval(w3.group(1)), 0, 5e-7)  # the table's 6 decimals


def test_the_guides_transform_numbers_agree_with_each_other() -> None:
    spec = importlib.util.spec_from_file_location("figures", DOCS / "make_internals_figures.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    r = script.transforms()
    assert r["func_grad_diff"] < 1e-15 and r["hessian_asymmetry"] < 1e-15
    slope, by_hand = r["slope"]
    assert slope == pytest.approx(by_hand, rel=1e-12)
    actual = script.compute()["step"][1]
    first, second = r["predicted"]
    assert abs(second - actual) < abs(first - actual)  # the curvature term helps
