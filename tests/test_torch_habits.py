"""PyTorch habits that work here too (issue 19, "Habits that should just work")."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


def test_format_of_a_one_element_tensor():
    loss = Tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235"
    assert f"{Tensor([[2.5]]):.1f}" == "2.5"
    assert f"{loss}" == repr(loss)
    with pytest.raises(TypeError, match=r"one-element.*\(2,\)"):
        f"{Tensor([1.0, 2.0]):.2f}"


def test_tolist_numel_float_double():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.numel() == 4
    assert t.float().dtype == np.float32 and t.float().double().dtype == np.float64


def test_abs_clamp_view_cat_match_numpy_and_pass_gradients():
    x = np.array([[-2.0, -0.5], [0.5, 3.0]])
    w = Tensor(x, requires_grad=True)
    np.testing.assert_array_equal(abs(w).data, np.abs(x))
    np.testing.assert_array_equal(w.clamp(min=-1.0, max=1.0).data, np.clip(x, -1, 1))
    np.testing.assert_array_equal(w.clamp(max=0.0).data, np.minimum(x, 0))
    np.testing.assert_array_equal(w.view(4).data, x.reshape(4))
    np.testing.assert_array_equal(w.view(-1, 1).data, x.reshape(-1, 1))
    np.testing.assert_array_equal(tg.cat([w, w], dim=1).data, np.concatenate([x, x], axis=1))
    (abs(w).sum() + w.clamp(-1.0, 1.0).sum() + tg.cat([w, w]).sum()).backward()
    # ∂|x| = sign x; ∂clamp = 1 inside (−1, 1), 0 outside; ∂cat = 2 (w used twice)
    np.testing.assert_array_equal(w.grad.data, np.sign(x) + (np.abs(x) < 1) + 2)
