"""Hostile input across EVERY operation of the op table (``tinygrad_sgd.testing.OP_TABLE``).

tests/test_hostile.py fuzzes the constructors, the binary operators' other operand, the
reductions' axes, reshape and transpose targets, and NaN/infinity through nine elementwise
functions.  Here Hypothesis takes every row of the op table (the same table the gradient checker
uses, so a new op is fuzzed as soon as it is listed) and attacks it four ways:

* ``special``: NaN, ±infinity, ±0, ±1e308 (overflow) and 5e-324 (subnormal) planted among the
  values of a valid case;
* ``zero``: a valid case with one input cut to length 0 along one axis (empty and zero-size
  arrays; the op's other arguments, drawn for the full shape, may now be out of range);
* ``dtype``: the inputs as float16, float32, int64 or bool tensors;
* ``param``: one argument (axis, shape, index, exponent, constant, bound, condition...)
  replaced by a hostile value: ``None``, a string, a float where an int belongs, NaN, an object,
  a nested list, a huge or negative int, ``True``, an empty tuple, a float or object array, an
  out-of-range axis, an impossible shape.

The rule is the issue's: each case gives NumPy's answer (the row's NumPy reference run on the
same arrays; NaN compares equal to NaN) or raises ``TypeError`` / ``ValueError`` (``IndexError``
for an index out of range) with a message.  Never another exception, never a result where NumPy
raises, never a different value; then, if the result is differentiable, ``backward`` runs
through it (with NaN in, NaN may come out, but no exception) and gives gradients of the inputs'
shapes.  A hang fails the test (an alarm interrupts any case taking 20 s).
"""

from __future__ import annotations

import signal
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor
from tinygrad_sgd.testing import OP_TABLE
from tinygrad_sgd.testing.op_table import OpSpec
from tinygrad_sgd.testing.strategies import HypothesisDraw

ALLOWED = (TypeError, ValueError, IndexError)
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]


def _stable_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _stable_logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """log Σ exp(x), shifted by the max; +inf anywhere gives +inf, all -inf gives -inf."""
    m = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axis)


def _stable_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _stable_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _reduced(per: np.ndarray, reduction: str) -> Any:
    return {"mean": np.mean, "sum": np.sum}.get(reduction, np.asarray)(per)


def _picked(values: np.ndarray, target: Any) -> np.ndarray:
    """values[..., target] for one class index per row."""
    return np.take_along_axis(values, np.asarray(target)[..., None], axis=-1)[..., 0]


def _conv_by_matrix_product(x, w, b=None, stride=1, padding=0):
    """The library's own product of the unfolded windows (ops.conv.correlate), for conv2d."""
    from tinygrad_sgd.ops.conv import correlate, pad, pair

    (ph, pw), step = pair(padding, "padding", "ref", 0), pair(stride, "stride", "ref", 1)
    z, _ = correlate(pad(x, (ph, ph, pw, pw)), w, step, (1, 1))
    return z if b is None else z + b[:, None, None]


# NOTE: the table's references are the textbook formulas, right for the bounded values the
# gradient checker draws.  At ±1e308 they overflow where the library (correctly) does not, so
# for the special-value cases each element may match either the textbook or the stable formula
# (they differ only where one of them overflows or meets inf - inf).
def _pool_in_tap_order(x, kernel_size, stride, mean):
    """Each kh×kw window of x summed tap by tap, u then v (the order of ops.conv's pooling)."""
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    sh, sw = (kh, kw) if stride is None else (stride, stride) if np.ndim(stride) == 0 else stride
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (ho, wo))
    for u in range(kh):
        for v in range(kw):
            out += x[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw]
    return out / (kh * kw) if mean else out


STABLE_REF = {
    "softplus": lambda x: _stable_softplus(x),
    "sigmoid": lambda x: _stable_sigmoid(x),
    "logsumexp": _stable_logsumexp,
    "softmax": _stable_softmax,
    "log_softmax": _stable_log_softmax,
    # the costs from logits: ln Σ eᶻ shifted by the max, and ℓ(z, y) = max(z, 0) − z y +
    # ln(1 + e^(−|z|)) for the binary one (e^(−z) of the textbook form overflows)
    "cross_entropy_rows": lambda z, y, reduction: _reduced(
        -np.sum(y * _stable_log_softmax(z, -1), axis=-1), reduction
    ),
    "cross_entropy_indices": lambda z, target, reduction: _reduced(
        -_picked(_stable_log_softmax(z, -1), target), reduction
    ),
    "binary_cross_entropy_with_logits": lambda z, y, reduction: _reduced(
        np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), reduction
    ),
    # conv2d's sums are one BLAS matrix product (as linear's, whose reference is matmul), which
    # may fuse a multiplication with the addition after it (FMA) and adds in its own order: with
    # ±1e308 or infinities among the values, 2·(−1e308) + ∞ is ∞ there but NaN in the table's
    # direct loop, and 1.52·1e308 − 1.52·1e308 leaves the first product's rounding error (1e292)
    # instead of 0.  So each element may match the loop or the same product of the same windows.
    "conv2d": _conv_by_matrix_product,
    "conv2d_no_bias": _conv_by_matrix_product,
    # pooling adds a window's taps one at a time (tap (0, 0), then (0, 1), ...), NumPy's mean in
    # its own order: a window holding ±1e308 and ones cancels to 0 + the ones that were added
    # after the cancellation, so 2/9 and 1/9 are both exact sums of the same nine values in
    # some order.  Each element may match NumPy or the same taps added in the library's order.
    "avg_pool2d": lambda x, kernel_size, stride: _pool_in_tap_order(x, kernel_size, stride, True),
    "sum_pool2d": lambda x, kernel_size, stride: _pool_in_tap_order(x, kernel_size, stride, False),
}

# NOTE: the table calls ``x.transpose(*axes)``, for which ``axes=()`` means "reverse the axes"
# (ndarray.transpose() does the same); np.transpose(x, ()) instead means "no axes" and raises.
REF_OVERRIDE = {
    "transpose": lambda x, axes: np.asarray(x).transpose(*(() if axes is None else axes))
}

# Tolerances by result dtype: a few ulps of accumulated rounding (the library's stable formulas
# and NumPy's differ in the order of operations), as relative error, and an absolute floor for
# values that cancel to about zero.
TOL = {
    np.dtype(np.float16): (2e-3, 2e-3),
    np.dtype(np.float32): (2e-6, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-300),
}

# NOTE: the NumPy references of these ops take the log of a sum of exponentials, ln Σ eˣ, which
# near a sum of 1 carries an absolute rounding error of about one ulp of 1 whatever the size of
# the result: ln(e^(1e-45)) is 0 in floating point, and log_softmax([0.25]) comes out as 8e-17
# instead of 0.  Their comparison gets an absolute floor of 4 ulps of 1 (the library's stable
# forms are the accurate side there).
LOG_OF_SUM = {"logsumexp", "log_softmax", "cross_entropy_rows", "cross_entropy_indices"}


class _Counter:
    cases = 0
    matched = 0
    rejected = 0  # NumPy raised and so did the library
    refused = 0  # NumPy answered, the library raised a TypeError/ValueError instead


COUNT = _Counter()


@pytest.fixture(autouse=True)
def _no_hang():
    """Any test that runs for 20 s per case is a hang: interrupt it with an error."""

    def alarm(signum, frame):
        raise TimeoutError("an operation hung on hostile input")

    if not hasattr(signal, "SIGALRM"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.signal(signal.SIGALRM, alarm)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _note(text: str) -> None:
    """hypothesis.note inside a Hypothesis test, nothing in an example test."""
    try:
        note(text)
    except Exception:
        pass


def _close(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise: equal within tolerance, or both NaN, or the same infinity."""
    a = np.asarray(got, dtype=np.float64)
    b = np.broadcast_to(np.asarray(expected, dtype=np.float64), a.shape)
    with np.errstate(all="ignore"):
        near = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= atol + rtol * np.abs(b))
    return near | (np.isnan(a) & np.isnan(b)) | (a == b)


def _tensors(arrays, dtype, requires_grad):
    out = []
    for a in arrays:
        if dtype is None:
            out.append(Tensor(a, requires_grad=requires_grad))
        else:
            d = np.dtype(dtype)
            out.append(Tensor(a, dtype=d, requires_grad=requires_grad and d.kind == "f"))
    return out


def _ref_inputs(arrays, dtype):
    return [np.asarray(a) if dtype is None else np.asarray(a).astype(dtype) for a in arrays]


def check(
    spec: OpSpec,
    arrays: list[np.ndarray],
    params: dict[str, Any],
    dtype: Any = None,
    alt_ref: Any = None,
) -> str:
    """Run ``spec`` on the inputs and judge it against NumPy; returns the verdict.

    With ``alt_ref`` (a second, equally valid formula), each element may match either."""
    COUNT.cases += 1
    ref = REF_OVERRIDE.get(spec.name, spec.ref)
    signal.alarm(20)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            expected = np.asarray(ref(*_ref_inputs(arrays, dtype), **params))
            ref_error = None
        except Exception as e:  # NumPy's verdict on the same input
            expected, ref_error = None, e
        ts = _tensors(arrays, dtype, requires_grad=True)
        try:
            out = spec.fn(*ts, **params)
        except ALLOWED as e:
            assert str(e).strip(), f"{spec.name}: {type(e).__name__} without a message"
            if ref_error is None:
                _note(f"refused where NumPy answers: {type(e).__name__}: {e}")
                COUNT.refused += 1
                return "refused"
            COUNT.rejected += 1
            return "rejected"
        # any other exception propagates and fails the test
        if isinstance(ref_error, OverflowError):
            # NOTE: NumPy's C-long limit (ddof=10**20), not a verdict on the maths: the library
            # answering (as NumPy does for any ddof >= n) is fine as long as it did not crash.
            COUNT.refused += 1
            return "numpy-overflow"
        assert ref_error is None, (
            f"{spec.name}: NumPy raises {type(ref_error).__name__}: {ref_error}, but the "
            f"library returned a result of shape {out.shape}"
        )
        assert isinstance(out, Tensor)
        assert out.shape == expected.shape, f"{spec.name}: shape {out.shape} != {expected.shape}"
        got = out.numpy()
        if got.dtype.kind in "fc" or expected.dtype.kind in "fc":
            rtol, atol = TOL.get(np.dtype(got.dtype), TOL[np.dtype(np.float64)])
            if expected.dtype.kind == "f" and expected.dtype.itemsize < got.dtype.itemsize:
                rtol, atol = TOL[expected.dtype]
            if spec.name in LOG_OF_SUM and got.dtype.kind == "f":
                atol = max(atol, 4 * float(np.finfo(got.dtype).eps))
            ok = _close(got, expected, rtol, atol)
            if alt_ref is not None and not ok.all():
                alt = np.asarray(alt_ref(*_ref_inputs(arrays, dtype), **params))
                ok |= _close(got, alt, rtol, atol)
            assert ok.all(), (
                f"{spec.name}: different values where {np.argwhere(~ok).tolist()}:\n"
                f"got {got!r}\nNumPy {expected!r}"
            )
        else:
            np.testing.assert_array_equal(got, expected, err_msg=f"{spec.name}: different values")
        if out.requires_grad:
            g = np.random.default_rng(0).normal(size=out.shape).astype(out.dtype)
            out.backward(g)
            for t in ts:
                if t.requires_grad:
                    assert t.grad is not None and t.grad.shape == t.shape
                    assert t.grad.dtype == t.dtype
    signal.alarm(0)
    COUNT.matched += 1
    return "matched"


SPECS = {spec.name: spec for spec in OP_TABLE}
NAMES = sorted(SPECS)
FUZZ = settings(
    max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.data())
def test_every_op_is_fuzzed(name, data):
    """Sanity of the harness itself: a valid case of every row matches its reference."""
    spec = SPECS[name]
    case = spec.draw_case(HypothesisDraw(data.draw))
    assert check(spec, list(case.arrays), dict(case.params)) == "matched"


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_special_values(name, data):
    spec = SPECS[name]
    case = spec.draw_case(HypothesisDraw(data.draw))
    arrays = []
    for a in case.arrays:
        a = np.array(a, dtype=np.float64)
        if a.size:
            k = data.draw(st.integers(1, a.size), label="how many")
            where = data.draw(st.lists(st.integers(0, a.size - 1), min_size=k, max_size=k))
            vals = data.draw(st.lists(st.sampled_from(SPECIALS), min_size=k, max_size=k))
            a.reshape(-1)[where] = vals
        arrays.append(a)
    note(f"arrays: {arrays!r}, params: {case.params!r}")
    check(spec, arrays, dict(case.params), alt_ref=STABLE_REF.get(name))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_zero_size_inputs(name, data):
    spec = SPECS[name]
    case = spec.draw_case(HypothesisDraw(data.draw))
    arrays = [np.asarray(a) for a in case.arrays]
    shaped = [i for i, a in enumerate(arrays) if a.ndim > 0]
    if not shaped:  # 0-d inputs only: make one of them an empty vector instead
        arrays[0] = np.zeros((0,))
    else:
        i = data.draw(st.sampled_from(shaped), label="input")
        axis = data.draw(st.integers(0, arrays[i].ndim - 1), label="axis")
        arrays[i] = np.take(arrays[i], [], axis=axis)
    note(f"shapes: {[a.shape for a in arrays]}, params: {case.params!r}")
    check(spec, arrays, dict(case.params))


DTYPES = [np.float16, np.float32, np.int64, np.bool_]


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_other_dtypes(name, dtype, data):
    spec = SPECS[name]
    case = spec.draw_case(HypothesisDraw(data.draw))
    arrays = [np.asarray(a) for a in case.arrays]
    if np.dtype(dtype).kind in "ib":
        arrays = [np.round(a) for a in arrays]  # integer-valued, so the cast loses nothing
    note(f"dtype {np.dtype(dtype)}, arrays: {arrays!r}, params: {case.params!r}")
    check(spec, arrays, dict(case.params), dtype=dtype)


HOSTILE = [
    None,
    "x",
    "2",
    1.5,
    float("nan"),
    float("inf"),
    object(),
    [[0]],
    -100,
    10**20,
    -(10**20),
    True,
    (),
    (0, 0),
    np.array([1.5]),
    np.array(["a"]),
    np.array([None], dtype=object),
    2 + 1j,
    {"axis": 0},
]


def _impossible_shapes(shape: tuple[int, ...]) -> list[Any]:
    size = int(np.prod(shape, dtype=np.int64))
    return [(size + 1,), (-1, -1), (-2,), (size, -3), (2.0,), (2**63,), (0,) if size else (1,)]


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].params is not None])
@FUZZ
@given(data=st.data())
def test_hostile_arguments(name, data):
    spec = SPECS[name]
    case = spec.draw_case(HypothesisDraw(data.draw))
    params = dict(case.params)
    key = data.draw(st.sampled_from(sorted(params)), label="argument")
    choices = HOSTILE + (_impossible_shapes(case.arrays[0].shape) if key == "shape" else [])
    if key == "axis":
        choices = choices + [7, -7, (0, 7), (0, -99)]
    params[key] = data.draw(st.sampled_from(choices), label="value")
    note(f"{key} = {params[key]!r}, shapes {[a.shape for a in case.arrays]}")
    check(spec, list(case.arrays), params)


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    """After the module: how many cases ran and how they ended (shown with ``pytest -s``)."""
    yield
    print(
        f"\nfuzzed {COUNT.cases} cases: {COUNT.matched} matched NumPy, {COUNT.rejected} "
        f"raised where NumPy raises, {COUNT.refused} refused where NumPy answers"
    )


# The bugs this fuzzer found, pinned as examples (each failed before its fix).
REGRESSIONS = [
    ("mean", [np.zeros((0, 3))], {"axis": 0, "keepdims": False}, None),  # ZeroDivisionError
    ("mean", [np.zeros((2, 0))], {"axis": 1, "keepdims": True}, None),
    ("var", [np.zeros((0,))], {"axis": None, "keepdims": False, "ddof": 0}, None),  # ditto
    ("var", [np.array([1.0, 2.0])], {"axis": None, "keepdims": False, "ddof": 5}, None),  # < 0
    ("var", [np.array([1.0, 2.0])], {"axis": 0, "keepdims": False, "ddof": np.ones(1)}, None),
    ("sum", [np.ones(3)], {"axis": 0, "keepdims": 10**20}, None),  # OverflowError
    ("logsumexp", [np.ones(3)], {"axis": 0, "keepdims": "x"}, None),  # taken as True
    ("reshape", [np.ones(2)], {"shape": (2.0,)}, None),  # a float length accepted
    ("reshape", [np.ones(2)], {"shape": (float("inf"),)}, None),  # OverflowError
    ("leaky_relu", [np.array([-1.0, 2.0])], {"c": 10**20}, None),  # OverflowError in backward
    ("softplus", [np.array([1.0, -2.0])], {}, np.int64),  # result truncated to int
    ("clip", [np.array([1.0, -2.0])], {"lo": -0.5, "hi": 0.25}, np.int64),  # truncated to int
    ("clip", [np.array(0.3)], {"lo": np.zeros(1), "hi": 1.0}, None),  # crash in backward
]


@pytest.mark.parametrize("name,arrays,params,dtype", REGRESSIONS)
def test_bugs_found_by_this_fuzzer_stay_fixed(name, arrays, params, dtype):
    assert check(SPECS[name], arrays, params, dtype=dtype) in ("matched", "rejected", "refused")


# ------------------------------------------------- the functions around the table's operations

NON_NUMERIC = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.builds(object),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.integers(0, 3), st.integers(), max_size=2),
    st.lists(st.one_of(st.none(), st.text(max_size=2)), min_size=1, max_size=3),
    st.lists(st.integers(0, 3), min_size=1, max_size=2).map(lambda v: [*v, None]),
    st.just(np.array([None, 1.0], dtype=object)),
    st.just(np.array(["1", "2"])),
)


@settings(max_examples=60)
@given(NON_NUMERIC, st.sampled_from([np.float64, np.float32, np.int64, np.bool_]))
def test_constructor_with_dtype_rejects_non_numeric_data(value, dtype):
    """With dtype=, NumPy would turn None into NaN and parse "3" as 3.0: refused instead, as
    without dtype= (tests/test_hostile.py)."""
    with pytest.raises(TypeError, match="Tensor: unsupported data"):
        Tensor(value, dtype=dtype)


def _x() -> Tensor:
    return Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)


AROUND = {
    "maximum": lambda v: tg.maximum(_x(), v),
    "minimum": lambda v: tg.minimum(v, _x()),
    "where-a": lambda v: tg.where(np.array([True, False, True]), v, _x()),
    "where-cond": lambda v: tg.where(v, _x(), _x()),
    "concatenate": lambda v: tg.concatenate([_x(), v]),
    "stack": lambda v: tg.stack([_x(), v]),
    "pow": lambda v: _x() ** v,
    "rpow": lambda v: v ** _x(),
    "matmul": lambda v: _x() @ v,
    "backward-gradient": lambda v: (_x() * 2).backward(v),
    "astype": lambda v: _x().astype(v),
    "unsqueeze": lambda v: _x().unsqueeze(v),
    "broadcast_to": lambda v: _x().broadcast_to(v),
    "softmax": lambda v: _x().softmax(v),
    "zeros": lambda v: Tensor.zeros(v),
    "randn": lambda v: Tensor.randn(v),
    "full": lambda v: Tensor.full(v, 1.0),
    "eye": lambda v: Tensor.eye(v),
}


def _numpy_numeric_dtype(spec: str) -> bool:
    try:
        return np.dtype(spec).kind in "biuf"
    except (TypeError, ValueError):
        return False


@pytest.mark.parametrize("name", sorted(AROUND))
@settings(max_examples=25)
@given(value=NON_NUMERIC)
def test_functions_around_the_ops_reject_non_numeric_arguments(name, value):
    if value is None and name in ("astype", "backward-gradient"):
        # astype(None) is float64 (NumPy's np.dtype(None)); backward(None) means "no gradient"
        value = "U3"
    if name == "astype" and isinstance(value, str) and _numpy_numeric_dtype(value):
        # NumPy reads some odd strings as dtypes ("\r" is float128): those are numeric, and
        # astype must accept them as NumPy does.
        assert AROUND[name](value).dtype == np.dtype(value)
        return
    with pytest.raises(ALLOWED) as info:
        AROUND[name](value)
    assert str(info.value).strip()


@pytest.mark.parametrize("shape", [(2.5,), ("3",), (float("nan"),), (2, 1.0)])
def test_constructors_refuse_lengths_that_are_not_integers(shape):
    """Tensor.zeros(2.5) used to give shape (2,): int() truncated it."""
    for make in (Tensor.zeros, Tensor.ones, Tensor.randn, Tensor.uniform):
        with pytest.raises(TypeError, match="shape must be integers"):
            make(*shape)
