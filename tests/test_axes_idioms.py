"""transpose keeps NumPy's meaning; swapaxes, permute and .mT (issue 19 item 3)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor

X = np.arange(24.0).reshape(2, 3, 4)


def test_transpose_keeps_numpys_meaning():
    t = Tensor(X[0])
    np.testing.assert_array_equal(t.transpose(0, 1).data, X[0])  # the identity permutation
    np.testing.assert_array_equal(t.transpose().data, X[0].T)


@pytest.mark.parametrize("a, b", [(0, 1), (0, 2), (-1, -2), (1, 1)])
def test_swapaxes_is_numpys_and_pytorchs_transpose(a, b):
    np.testing.assert_array_equal(Tensor(X).swapaxes(a, b).data, np.swapaxes(X, a, b))


@pytest.mark.parametrize("dims", [(2, 0, 1), (0, 1, 2), (-1, 0, 1)])
def test_permute(dims):
    np.testing.assert_array_equal(Tensor(X).permute(*dims).data, np.transpose(X, dims))
    np.testing.assert_array_equal(Tensor(X).permute(dims).data, np.transpose(X, dims))


@pytest.mark.parametrize("dims", [(0, 1), (0, 0, 1), (0, 1, 3)])
def test_permute_rejects_a_non_permutation(dims):
    with pytest.raises(ValueError, match="permutation"):
        Tensor(X).permute(*dims)


def test_mT_swaps_the_last_two_axes_and_passes_the_gradient_back():
    w = Tensor(X, requires_grad=True)
    np.testing.assert_array_equal(w.mT.data, np.swapaxes(X, -1, -2))
    g = np.random.default_rng(0).standard_normal((2, 4, 3))
    (w.mT * Tensor(g)).sum().backward()  # ∂/∂w Σ wᵀ∘g = gᵀ
    np.testing.assert_array_equal(w.grad.data, np.swapaxes(g, -1, -2))
    with pytest.raises(ValueError, match="at least 2"):
        _ = Tensor([1.0, 2.0]).mT


def test_swapaxes_and_permute_pass_gradchecks():
    w = Tensor(X / 10, requires_grad=True)
    assert tg.gradcheck(lambda t: t.swapaxes(0, 2).sin(), [w])
    assert tg.gradcheck(lambda t: t.permute(1, 2, 0).sin(), [w])
