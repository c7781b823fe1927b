"""Engine tests with toy Functions on hand-built graphs: every expected value is derived by hand."""

from __future__ import annotations

import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor
from tinygrad_sgd.autograd import grad

# ---------------------------------------------------------------- toy functions


class Scale(tg.Function):
    """y = k x; dy/dx = k."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


class Square(tg.Function):
    """y = x²; dy/dx = 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x


class Cube(tg.Function):
    """The API.md example: y = x³, dy/dx = 3x²."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x**2


class AddMul(tg.Function):
    """y = a·b + a; dy/da = b + 1, dy/db = a (two inputs, broadcasting allowed)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b + a

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * (b + 1), g * a


class Inc(tg.Function):
    @staticmethod
    def forward(ctx, x):
        return x + 1.0

    @staticmethod
    def backward(ctx, g):
        return g


class SavesOutput(tg.Function):
    """y = eˣ saved as its output; dy/dx = y."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


def leaf(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- graph shapes


def test_diamond_sums_both_paths():
    # x -> a = 2x, b = x², y = a * b = 2x³ ;  dy/dx = 6x²
    x = leaf([1.5, -2.0])
    a = Scale.apply(x, 2.0)
    b = Square.apply(x)
    y = AddMul.apply(a, b)  # a*b + a = 2x³ + 2x ; dy/dx = 6x² + 2
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.data**2 + 2, rtol=1e-14)


def test_fan_out_to_many_consumers():
    x = leaf([0.5, 2.0, -1.0])
    total = Scale.apply(x, 1.0)
    for k in range(2, 11):
        total = total + Scale.apply(x, float(k))
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, sum(range(1, 11))))


def test_same_tensor_twice_in_one_op():
    x = leaf([3.0, -1.0])
    y = AddMul.apply(x, x)  # x² + x ; dy/dx = 2x + 1
    y.backward(np.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data + 1)


def test_unused_branch_gets_no_gradient():
    x = leaf([1.0])
    z = leaf([2.0])
    _ = Square.apply(z)
    y = Square.apply(x).sum()
    y.backward()
    assert z.grad is None
    np.testing.assert_allclose(x.grad.numpy(), [2.0])


def test_deep_chain_without_recursion():
    n = 10**6
    x = leaf(0.0)
    y = x
    for _ in range(n):
        y = Inc.apply(y)
    limit = sys.getrecursionlimit()
    assert limit < n  # the walk must be iterative to pass at all
    y.backward()
    assert y.item() == n
    assert x.grad.item() == 1.0


def test_wide_graph():
    xs = [leaf(float(i)) for i in range(10_000)]
    total = tg.stack([Square.apply(x) for x in xs]).sum()
    total.backward()
    np.testing.assert_allclose([x.grad.item() for x in xs[:5]], [0.0, 2.0, 4.0, 6.0, 8.0])
    assert xs[-1].grad.item() == 2 * 9999


# ---------------------------------------------------------------- accumulation and freeing


def test_accumulation_over_two_backward_calls_is_exactly_twice():
    x = leaf([0.3, -1.2, 2.5])
    y = (Cube.apply(x) * Tensor([1.0, 2.0, 3.0])).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)
    np.testing.assert_allclose(first, 3 * x.data**2 * [1.0, 2.0, 3.0])


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = Square.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_graph_memory_released_after_backward():
    x = leaf(np.ones(100))
    h = Square.apply(x)
    out = SavesOutput.apply(h)
    loss = out.sum()
    h_ref, out_ref = weakref.ref(h), weakref.ref(out)
    ctx = out._ctx
    del h, out
    gc.collect()
    assert h_ref() is not None  # kept alive by the graph until backward
    loss.backward()
    assert h_ref() is None and out_ref() is None
    assert ctx.inputs == () and ctx._saved == ()


def test_graph_freed_by_reference_counting_without_backward():
    gc.disable()
    try:
        x = leaf(np.ones(10))
        y = SavesOutput.apply(Square.apply(x))
        ref = weakref.ref(y)
        del y
        assert ref() is None  # no reference cycle: freed without the cyclic collector
    finally:
        gc.enable()


def test_non_scalar_backward_without_gradient_raises():
    y = Square.apply(leaf([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="one element"):
        y.backward()


def test_gradient_of_wrong_shape_raises():
    y = Square.apply(leaf([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_explicit_gradient_is_used_as_upstream():
    x = leaf([1.0, 2.0, 3.0])
    Square.apply(x).backward(np.array([0.5, -1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data * [0.5, -1.0, 2.0])


# ---------------------------------------------------------------- aliasing


def test_gradients_do_not_alias_each_other_or_the_seed():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    seed = np.array([1.0, 1.0])
    (a + b).backward(seed)  # Add passes the very same gradient object to both inputs
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, seed)
    a.grad.data[...] = 0
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])


def test_accumulation_does_not_write_into_an_old_grad():
    x = leaf([1.0])
    Square.apply(x).sum().backward()
    old = x.grad
    Square.apply(x).sum().backward()
    assert old.item() == 2.0 and x.grad.item() == 4.0


# ---------------------------------------------------------------- broadcasting in the engine


def test_engine_undoes_broadcasting_for_custom_functions():
    a = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf([10.0, 20.0, 30.0])  # broadcast over rows
    c = leaf(np.array([[2.0], [3.0]]))  # broadcast over columns
    AddMul.apply(AddMul.apply(a, b), c).backward(np.ones((2, 3)))
    # y = u c + u with u = a b + a ; dy/db = (c + 1) a summed over rows
    expected_b = ((c.data + 1) * a.data).sum(axis=0)
    np.testing.assert_allclose(b.grad.numpy(), expected_b)
    u = a.data * b.data + a.data
    np.testing.assert_allclose(c.grad.numpy(), u.sum(axis=1, keepdims=True))
    assert b.grad.shape == (3,) and c.grad.shape == (2, 1)


def test_bad_gradient_shape_from_a_function_is_reported():
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return np.ones((5,))

    with pytest.raises(RuntimeError, match=r"Bad\.backward.*\(5,\).*\(2, 3\)"):
        Bad.apply(leaf(np.ones((2, 3)))).sum().backward()


def test_wrong_number_of_gradients_is_reported():
    class Two(tg.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="returned 1 gradient"):
        Two.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_gradient_dtype_is_cast_to_the_leaf_dtype():
    x32 = leaf([1.0, 2.0], dtype=np.float32)
    w64 = leaf([0.5, 0.25])
    y = (x32 * w64).sum()  # float64 result: the gradient for x32 arrives as float64
    assert y.dtype == np.float64
    y.backward()
    assert x32.grad.dtype == np.float32 and w64.grad.dtype == np.float64
    np.testing.assert_allclose(x32.grad.numpy(), [0.5, 0.25])


# ---------------------------------------------------------------- higher order


def test_create_graph_gives_second_and_third_derivatives_of_custom_function():
    x = leaf([0.7, -1.3])
    y = Cube.apply(x).sum()
    (g1,) = grad(y, x, create_graph=True)
    np.testing.assert_allclose(g1.numpy(), 3 * x.data**2)
    (g2,) = grad(g1.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.numpy(), 6 * x.data)
    (g3,) = grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), [6.0, 6.0])


def test_backward_create_graph_makes_grad_differentiable():
    x = leaf([0.4, 1.1])
    y = (x.sigmoid() * x).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad.numpy(), s + x.data * s * (1 - s))
    g = x.grad
    x.grad = None
    g.sum().backward()
    # d/dx [σ + x σ(1−σ)] = 2σ(1−σ) + x σ(1−σ)(1−2σ)
    d = s * (1 - s)
    np.testing.assert_allclose(x.grad.numpy(), 2 * d + x.data * d * (1 - 2 * s), rtol=1e-12)


def test_plain_backward_builds_no_graph():
    x = leaf([0.4, 1.1])
    (x.exp() * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.is_leaf


def test_grad_does_not_touch_dot_grad():
    x = leaf([2.0])
    (g,) = grad(Square.apply(x).sum(), x)
    assert x.grad is None and g.item() == 4.0


def test_grad_unused_input():
    x, z = leaf([2.0]), leaf([1.0])
    y = Square.apply(x).sum()
    with pytest.raises(RuntimeError, match="not used"):
        grad(y, [x, z], retain_graph=True)
    gx, gz = grad(y, [x, z], allow_unused=True)
    assert gz.numpy().tolist() == [0.0] and gx.item() == 4.0


# ---------------------------------------------------------------- grad mode


def test_no_grad_records_nothing_and_nests():
    x = leaf([1.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            z = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf


def test_no_grad_as_decorator_and_restored_after_exception():
    @tg.no_grad()
    def f(x):
        assert not tg.is_grad_enabled()
        return x * 3

    assert not f(leaf([1.0])).requires_grad
    assert tg.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            raise ZeroDivisionError("inside no_grad")
    assert tg.is_grad_enabled()

    @tg.no_grad()
    def recurse(n):
        if n:
            recurse(n - 1)
        else:
            raise KeyError("bottom")

    with pytest.raises(KeyError):
        recurse(3)
    assert tg.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with tg.no_grad():
        t = threading.Thread(target=lambda: seen.append(tg.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_backward_restores_grad_mode_after_an_error_in_a_backward():
    class Boom(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            raise ArithmeticError("boom")

    y = Boom.apply(leaf([1.0])).sum()
    with pytest.raises(ArithmeticError):
        y.backward()
    assert tg.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and np.shares_memory(d.data, y.data)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.data)  # d is a constant: no path through y


def test_requires_grad_only_recorded_when_an_input_needs_it():
    a = Tensor([1.0])
    assert (a * 2).grad_fn is None
    b = leaf([1.0])
    out = a * b
    assert out.grad_fn is not None and out.grad_fn.needs_input_grad == (False, True)


def test_saved_tensors_are_the_graph_tensors():
    seen = {}

    class Probe(tg.Function):
        @staticmethod
        def forward(ctx, x, y):
            out = x * y
            ctx.save_for_backward(x, out, np.array(5.0))
            return out

        @staticmethod
        def backward(ctx, g):
            seen["saved"] = ctx.saved_tensors
            return g, g

    x, y = leaf([1.0]), leaf([2.0])
    out = Probe.apply(x, y)
    out.backward(np.ones(1))
    sx, sout, const = seen["saved"]
    assert sx is x and sout is out
    assert isinstance(const, Tensor) and not const.requires_grad and const.item() == 5.0
