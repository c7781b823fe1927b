"""Linear's input: its dtype must match the layer's (issue 19 item 5); lists are accepted."""

from __future__ import annotations

import numpy as np
import pytest

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
