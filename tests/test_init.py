"""nn.init: each scheme has the stated distribution (moments of 60,000 samples), is reproducible
from a seed or a Generator, fills in place and rejects bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_sgd import Tensor, nn
from tinygrad_sgd.nn import init

OUT, IN = 200, 300  # 60,000 samples: the sample std is within ~0.3 % of σ (1 standard error)


def moments(t: Tensor) -> tuple[float, float]:
    return float(t.data.mean()), float(t.data.std())


# (scheme, expected std, is it uniform) for a weight of shape (OUT, IN)
SCHEMES = [
    (lambda t, s: init.standard_normal_(t, seed=s), 1.0, False),
    (lambda t, s: init.scaled_normal_(t, seed=s), 1 / math.sqrt(IN), False),
    (lambda t, s: init.xavier_normal_(t, seed=s), math.sqrt(2 / (IN + OUT)), False),
    (lambda t, s: init.xavier_uniform_(t, seed=s), math.sqrt(2 / (IN + OUT)), True),
    (lambda t, s: init.kaiming_normal_(t, seed=s), math.sqrt(2 / IN), False),
    (lambda t, s: init.kaiming_uniform_(t, seed=s), math.sqrt(2 / IN), True),
    (lambda t, s: init.normal_(t, 0.0, 0.3, seed=s), 0.3, False),
    (lambda t, s: init.uniform_(t, -0.5, 0.5, seed=s), 1 / math.sqrt(12), True),
]


@pytest.mark.parametrize("k", range(len(SCHEMES)))
def test_scheme_moments_and_support(k: int) -> None:
    fill, std, uniform = SCHEMES[k]
    t = Tensor(np.zeros((OUT, IN)), requires_grad=True)
    data_obj = t.data
    assert fill(t, 0) is t and t.data is data_obj  # in place, same objects
    mean, s = moments(t)
    # 5 standard errors: σ/√N for the mean, σ/√(2N) (normal) or smaller (uniform) for the std
    assert abs(mean) < 5 * std / math.sqrt(OUT * IN)
    assert s == pytest.approx(std, rel=5 / math.sqrt(2 * OUT * IN))
    if uniform:
        bound = std * math.sqrt(3)
        assert t.data.max() <= bound and t.data.min() >= -bound
        assert t.data.max() > 0.99 * bound  # really spread over the whole interval
    else:
        # a normal sample of 60,000 has |x| > 3σ about 0.27 % of the time
        frac = float(np.mean(np.abs(t.data) > 3 * std))
        assert 0.0015 < frac < 0.004


def test_seeds_generators_and_manual_seed() -> None:
    a, b = Tensor(np.zeros((3, 4))), Tensor(np.zeros((3, 4)))
    init.xavier_uniform_(a, seed=5)
    init.xavier_uniform_(b, seed=5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    rng = np.random.default_rng(5)
    init.xavier_uniform_(a, seed=rng)
    init.xavier_uniform_(b, seed=rng)  # the Generator advanced: different values
    assert not np.array_equal(a.numpy(), b.numpy())
    init.manual_seed(9)
    init.normal_(a)
    init.manual_seed(9)
    init.normal_(b)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TypeError, match="seed must be None, an int or a numpy.random.Generator"):
        init.normal_(a, seed="x")  # type: ignore[arg-type]


def test_constants_and_dtypes() -> None:
    t = Tensor(np.ones((2, 3), dtype=np.float32))
    init.zeros_(t)
    assert t.dtype == np.float32 and not t.data.any()
    init.constant_(t, 2.5)
    assert (t.data == 2.5).all()
    init.ones_(t)
    assert (t.data == 1).all()
    init.kaiming_normal_(t, seed=1)
    assert t.dtype == np.float32


def test_gain_values() -> None:
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(5,\)"):
        init.scaled_normal_(Tensor(np.zeros(5)))
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.normal_(np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating"):
        init.zeros_(Tensor(np.zeros(3, dtype=np.int64), dtype=np.int64))
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal_(Tensor(np.zeros(3)), std=-1.0)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(Tensor(np.zeros((2, 2))), mode="fan")


def test_linear_init_schemes() -> None:
    big = nn.Linear(400, 300, init="standard", seed=0)
    assert moments(big.weight)[1] == pytest.approx(1.0, rel=0.02)
    assert moments(big.bias)[1] == pytest.approx(1.0, rel=0.2)  # only 300 samples
    book3 = nn.Linear(400, 300, seed=0)  # default: the book's chapter 3 scheme
    assert moments(book3.weight)[1] == pytest.approx(1 / 20, rel=0.02)
    assert moments(book3.bias)[1] == pytest.approx(1.0, rel=0.2)
    he = nn.Linear(400, 300, init="kaiming_normal", seed=0)
    assert moments(he.weight)[1] == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert not he.bias.data.any()

    def custom(w: Tensor, b: Tensor | None, rng: np.random.Generator) -> None:
        init.constant_(w, 0.5)
        assert b is not None
        init.uniform_(b, 2.0, 3.0, seed=rng)

    c = nn.Linear(3, 2, init=custom, seed=1)
    assert (c.weight.data == 0.5).all() and ((c.bias.data >= 2) & (c.bias.data < 3)).all()
