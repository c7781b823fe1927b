"""Linear's input: its dtype must match the layer's (issue 19 item 5); lists are accepted."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn


def test_float64_input_to_a_float32_layer_is_a_type_error_naming_both():
    layer = nn.Linear(4, 2, dtype=np.float32, seed=0)
    with pytest.raises(TypeError, match=r"input is float64.*parameters are float32"):
        layer(Tensor(np.ones((3, 4))))
    with pytest.raises(TypeError, match=r"input is float64.*float32"):
        layer(np.ones((3, 4)))  # a float64 ndarray keeps its dtype, as in Tensor()


def test_float32_input_to_a_float64_layer_is_a_type_error():
    layer = nn.Linear(4, 2, dtype=np.float64, seed=0)
    with pytest.raises(TypeError, match=r"input is float32.*parameters are float64"):
        layer(Tensor(np.ones((3, 4), dtype=np.float32)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_list_takes_the_layers_dtype(dtype):
    layer = nn.Linear(4, 2, dtype=dtype, seed=0)
    x = [[1.0, 2.0, 3.0, 4.0]]
    z = layer(x)
    assert z.dtype == dtype
    W, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(z.data, np.array(x, dtype=dtype) @ W.T + b, rtol=1e-6)


def test_integer_array_input_takes_the_layers_dtype():
    layer = nn.Linear(2, 1, dtype=np.float32, seed=0)
    assert layer(np.array([[1, 2]])).dtype == np.float32


# ---------------------------------------------------------------- every module takes numbers


def _modules():
    conv = nn.Conv2d(1, 2, 2, seed=0)
    return [
        (nn.Linear(4, 2, seed=0), [[1.0, 2.0, 3.0, 4.0]]),
        (
            nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1)),
            [[1, 2, 3, 4]],
        ),
        (nn.Sigmoid(), [[0.5, -1.0]]),
        (nn.Tanh(), 0.25),
        (nn.ReLU(), [-1.0, 2.0]),
        (nn.LeakyReLU(0.1), (-1.0, 2.0)),
        (nn.Softmax(dim=1), [[1.0, 2.0, 3.0]]),
        (nn.LogSoftmax(), [1.0, 2.0]),
        (nn.Identity(), [1.0]),
        (nn.Flatten(), [[[1.0, 2.0], [3.0, 4.0]]]),
        (nn.Dropout(0.5, seed=0), [[1.0, 2.0, 3.0]]),
        (conv, np.arange(9).reshape(1, 1, 3, 3).tolist()),
        (nn.MaxPool2d(2), np.arange(16).reshape(1, 1, 4, 4)),
        (nn.AvgPool2d(2), np.arange(16.0).reshape(1, 1, 4, 4).tolist()),
    ]


@pytest.mark.parametrize("k", range(14))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_module_accepts_what_tensor_accepts(k, dtype):
    """A number, a (nested) list or tuple, an integer array: the same output as the Tensor of
    the module's dtype (its parameters', else the default dtype)."""
    tg.set_default_dtype(dtype)
    module, x = _modules()[k]
    other, _ = _modules()[k]  # the same seeds: Dropout draws the same mask
    for m in (module, other):
        m.to(dtype)
    want = other(Tensor(np.asarray(x), dtype=dtype))
    got = module(x)
    assert isinstance(got, Tensor) and got.dtype == dtype
    np.testing.assert_array_equal(got.data, want.data)


def test_a_list_takes_a_float32_networks_dtype_under_the_float64_default():
    """The README's two stories: a float32 network (``build_network``'s default) given a list
    computes in float32; a float64 array given to it is the dtype TypeError, as before."""
    assert tg.get_default_dtype() == np.float64
    net = tg.nn.Sequential(tg.nn.Linear(2, 2, seed=0, dtype=np.float32), tg.nn.Sigmoid())
    assert net([[1.0, 2.0]]).dtype == np.float32
    assert net(np.array([[1, 2]])).dtype == np.float32
    with pytest.raises(TypeError, match="the input is float64 but the layer's parameters are"):
        net(np.array([[1.0, 2.0]]))


def test_a_list_of_tensors_reaches_forward_unchanged():
    class Pair(tg.nn.Module):
        def forward(self, xs):
            return xs[0] + xs[1]

    a = Tensor([1.0], requires_grad=True)
    Pair()([a, a]).backward()
    np.testing.assert_array_equal(a.grad.data, [2.0])
