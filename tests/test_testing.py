"""tinygrad_sgd.testing: strategies keep their promises, the op helper and the ``gradcheck``
command pass right operations and catch planted errors (test the tester)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Function, Tensor
from tinygrad_sgd.testing import (
    OP_TABLE,
    Domain,
    NumpyDraw,
    OpCheckError,
    OpSpec,
    arrays,
    broadcastable_shapes,
    cases,
    check_case,
    check_op,
    find_ops,
    floats,
    op_test,
    tensors,
)
from tinygrad_sgd.testing.draw import push_away, spread

REPO = Path(__file__).resolve().parents[1]

# ---- planted errors, shared by the helper tests and (as a module file) the command tests -----

PLANTED_SOURCE = '''
"""Deliberately wrong operations: each must make every checker fail."""
import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd.testing import Domain, OpSpec


class CubeOffByTenthPercent(tg.Function):
    """y = x³ with a derivative 0.1 % too large."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x**2 * 1.001


class SoftmaxZeroBackward(tg.Function):
    """Right softmax, backward returns zeros."""

    @staticmethod
    def forward(ctx, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        return g * 0.0


class ScaleColumnsWrongAxis(tg.Function):
    """z = x ⊙ w with x (n, n), w (n,): ∂C/∂w = Σ_rows g ⊙ x, but summed over the wrong axis."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, (g * x).sum(axis=1)   # wrong: should be axis=0


def _square(draw):
    n = draw.integers(2, 4)
    return [(n, n), (n,)]


def _softmax_ref(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


OPS = [
    OpSpec("planted_cube_off", CubeOffByTenthPercent.apply, lambda x: x**3,
           domain=Domain(0.5, 2.0)),
    OpSpec("planted_softmax_zero", SoftmaxZeroBackward.apply, _softmax_ref,
           shapes=lambda d: [d.shape(1, 2, 2, 4)]),
    OpSpec("planted_wrong_axis", ScaleColumnsWrongAxis.apply, lambda x, w: x * w,
           shapes=_square),
]
'''


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted module, importable (for the helper) and on disk (for the command)."""
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted_ops.py").write_text(PLANTED_SOURCE)
    sys.path.insert(0, str(folder))
    try:
        import planted_ops

        yield folder, planted_ops
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("planted_ops", None)


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x**2


# ---- strategies ------------------------------------------------------------------------------


@given(tensors(shape=(2, 3), min_value=-1.0, max_value=0.5, requires_grad=True))
def test_tensors_have_the_shape_bounds_and_flags_asked_for(t) -> None:
    assert isinstance(t, Tensor) and t.shape == (2, 3) and t.dtype == np.float64
    assert t.requires_grad
    assert np.all((t.numpy() >= -1.0) & (t.numpy() <= 0.5))


@given(tensors(dtype=np.float32))
def test_tensors_of_arbitrary_shape_and_other_dtype(t) -> None:
    assert t.dtype == np.float32 and t.ndim <= 3 and np.isfinite(t.numpy()).all()


def test_tensors_include_0d_and_3d_shapes() -> None:
    assert find(tensors(), lambda t: t.ndim == 0).shape == ()
    assert find(tensors(), lambda t: t.ndim == 3).ndim == 3


@given(tensors(avoid=(0.0, 1.0), margin=0.1))
def test_tensors_stay_away_from_kinks(t) -> None:
    x = t.numpy()
    assert np.all(np.abs(x) >= 0.1) and np.all(np.abs(x - 1.0) >= 0.1)
    assert np.all((x >= -3) & (x <= 3))


@given(floats(-1.0, 1.0, avoid=(0.0,), margin=0.05))
def test_floats_stay_away_from_kinks(v) -> None:
    assert -1.0 <= v <= 1.0 and abs(v) >= 0.05


@given(arrays(shape=(4, 4), distinct=True, margin=0.05))
def test_distinct_arrays_have_no_ties(a) -> None:
    v = np.sort(a.ravel())
    assert np.all(np.diff(v) >= 0.05)
    assert np.all((v >= -3) & (v <= 3))


@given(broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes) -> None:
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)  # raises ValueError if they do not broadcast


def test_broadcastable_shapes_include_0d_and_stretched_axes() -> None:
    assert () in find(broadcastable_shapes(2), lambda s: () in s)
    # a size-1 axis stretched against a longer one
    s = find(
        broadcastable_shapes(2, min_dims=1),
        lambda s: len(s[0]) == len(s[1]) and any(a == 1 < b for a, b in zip(*s)),
    )
    assert np.broadcast_shapes(*s) == tuple(max(a, b) for a, b in zip(*s))


def test_push_away_and_spread() -> None:
    dom = Domain(-1.0, 1.0, avoid=(0.0, 0.5), margin=0.1)
    x = push_away(np.array([0.0, -0.05, 0.45, 0.55, 0.9, 1.0]), dom)
    assert np.all(np.abs(x) >= 0.1) and np.all(np.abs(x - 0.5) >= 0.1)
    assert np.all((x >= -1) & (x <= 1))
    assert x[4] == 0.9  # far from the kinks: untouched
    y = spread(np.zeros(10), Domain(-1.0, 1.0, margin=0.1))
    assert np.all(np.diff(np.sort(y)) >= 0.1) and np.all((y >= -1) & (y <= 1))
    with pytest.raises(ValueError, match="cannot be"):
        spread(np.zeros(30), Domain(-1.0, 1.0, margin=0.1))
    with pytest.raises(ValueError):
        Domain(1.0, -1.0)


@given(st.data())
def test_cases_follow_the_row(data) -> None:
    spec = find_ops(["max"])[0]
    case = data.draw(cases(spec))
    (x,) = case.arrays
    assert case.params["keepdims"] in (True, False)
    assert np.all(np.diff(np.sort(x.ravel())) >= 1e-2)  # distinct=True: no ties


def test_numpy_draw_is_reproducible() -> None:
    spec = find_ops(["getitem_int_array"])[0]
    a = [spec.draw_case(NumpyDraw(5)) for _ in range(3)]
    b = [spec.draw_case(NumpyDraw(5)) for _ in range(3)]
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca.arrays[0], cb.arrays[0])


def test_find_ops() -> None:
    names = [op.name for op in find_ops(["matmul*", "exp"])]
    assert "exp" in names and "matmul_2d" in names and "add" not in names
    with pytest.raises(ValueError, match="no operation matches 'nope'"):
        find_ops(["nope"])


def test_importing_the_package_does_not_import_hypothesis() -> None:
    code = "import sys, tinygrad_sgd; print('hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


BLOCK_HYPOTHESIS = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ModuleNotFoundError("No module named 'hypothesis'", name="hypothesis")
sys.meta_path.insert(0, _Block())
"""


def test_star_import_without_hypothesis_gives_the_numpy_names(tmp_path) -> None:
    """``from tinygrad_sgd.testing import *`` where Hypothesis is not installed (a None entry in
    sys.modules makes its import fail): the NumPy-only names, and none that needs Hypothesis."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None
        from tinygrad_sgd.testing import *
        print(sorted(k for k in dir() if not k.startswith("_") and k != "sys"))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(tg.__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    names = eval(out.stdout)
    assert "check_case" in names and "OpSpec" in names and "OP_TABLE" in names
    assert not {"tensors", "check_op", "strategies", "HypothesisDraw"} & set(names)


def test_strategies_without_hypothesis_say_what_to_install() -> None:
    code = BLOCK_HYPOTHESIS + textwrap.dedent(
        """
        import tinygrad_sgd.testing as t
        try:
            t.tensors
        except ImportError as e:
            print("ImportError:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "ImportError" in out.stdout and "tinygrad-sgd[testing]" in out.stdout


# ---- the helper: right ops pass, planted errors fail ------------------------------------------


def test_helper_passes_a_right_custom_op() -> None:
    check_op(OpSpec("cube", Cube.apply, lambda x: x**3), max_examples=15)


test_cube_via_op_test = op_test(OpSpec("cube", Cube.apply, lambda x: x**3), max_examples=10)


@pytest.mark.parametrize("name", ["planted_cube_off", "planted_softmax_zero", "planted_wrong_axis"])
def test_helper_catches_planted_errors(planted, name) -> None:
    _, module = planted
    spec = next(op for op in module.OPS if op.name == name)
    with pytest.raises(OpCheckError, match="does not match the finite differences"):
        check_op(spec, max_examples=20)


def test_gradcheck_catches_the_planted_errors(planted) -> None:
    _, m = planted
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(0.5, 2.0, (3, 3)), requires_grad=True)
    w = Tensor(rng.uniform(-1, 1, 3), requires_grad=True)
    for fn, inputs in [
        (m.CubeOffByTenthPercent.apply, [x]),
        (m.SoftmaxZeroBackward.apply, [x]),
        (m.ScaleColumnsWrongAxis.apply, [x, w]),
    ]:
        with pytest.raises(tg.GradcheckError):
            tg.gradcheck(fn, inputs, rtol=1e-5, atol=1e-8)  # 0.1 % needs rtol below 1e-3


def _bad_case_report(spec: OpSpec, x: np.ndarray):
    from tinygrad_sgd.testing import Case

    return check_case(spec, Case((x,), {}), second_order=False)


def test_checker_reports_a_wrong_forward() -> None:
    spec = OpSpec("almost_exp", lambda x: x.exp() * 1.000001, np.exp)
    r = _bad_case_report(spec, np.array([0.5, 1.0]))
    assert not r.passed and any("forward: value" in p for p in r.problems)


def test_checker_reports_a_wrong_dtype_or_shape() -> None:
    r = _bad_case_report(
        OpSpec("f32", lambda x: x.astype(np.float32), lambda x: x), np.array([0.5, 1.0])
    )
    assert any("dtype float32" in p for p in r.problems)
    r = _bad_case_report(OpSpec("sum", lambda x: x.sum(), lambda x: x), np.array([0.5, 1.0]))
    assert any("forward: shape ()" in p for p in r.problems)


def test_checker_reports_a_forward_that_mutates_its_input() -> None:
    class DoubleInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x *= 2.0
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    r = _bad_case_report(OpSpec("dbl", DoubleInPlace.apply, lambda x: 2 * x), np.array([1.0]))
    assert "forward mutated input 0" in r.problems


def test_checker_reports_a_backward_that_mutates_the_upstream_gradient() -> None:
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            g.data *= 1.0 + 1e-9  # in place: the caller's gradient is damaged
            return g.clone()

    r = _bad_case_report(OpSpec("id", Ident.apply, lambda x: x), np.array([1.0, 2.0]))
    assert "backward mutated the upstream gradient" in r.problems


def test_checker_checks_second_derivatives() -> None:
    class CubeConstBackward(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * Tensor(3 * x.data**2)

    from tinygrad_sgd.testing import Case

    spec = OpSpec("cube_const", CubeConstBackward.apply, lambda x: x**3)
    r = check_case(spec, Case((np.array([0.5, 1.5]),), {}))
    assert r.first_passed and r.second_passed is False and not r.passed


class ExpZeroBackward(Function):
    """y = eˣ with a backward that is wrong everywhere (0 instead of g · eˣ)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 0.0 * x


# One element, so that ⟨u, f(x + ε) − f(x − ε)⟩ / 2ε = u · inf is ±inf rather than inf − inf = nan
# (a nan was already refused): with ε = 1e10, e^(x + ε) overflows for every x of the domain.
EXP_ZERO = OpSpec(
    "exp_zero_backward", ExpZeroBackward.apply, np.exp, shapes=lambda d: [(1,)], second_order=False
)


def test_helper_and_checker_fail_a_wrong_backward_where_differences_overflow() -> None:
    from tinygrad_sgd.testing import Case

    with np.errstate(over="ignore"):
        report = check_case(EXP_ZERO, Case((np.array([0.5]),), {}), eps=1e10)
        assert not report.passed and "not finite" in report.message()
        with pytest.raises(OpCheckError, match="not finite"):
            check_op(EXP_ZERO, max_examples=5, eps=1e10)


BAD_SETTINGS = [
    ("eps", 0.0),
    ("eps", -1.0),
    ("eps", float("inf")),
    ("eps", float("nan")),
    ("atol", -1e-7),
    ("atol", float("inf")),
    ("atol", float("nan")),
    ("rtol", -1e-5),
    ("rtol", float("inf")),
    ("rtol", float("nan")),
]


@pytest.mark.parametrize("name,value", BAD_SETTINGS)
def test_helper_checker_and_check_ops_refuse_bad_settings(name, value) -> None:
    from tinygrad_sgd.testing import Case
    from tinygrad_sgd.testing.command import check_ops

    spec = OpSpec("cube", Cube.apply, lambda x: x**3)
    need = r"> 0" if name == "eps" else r">= 0"
    for who, call in [
        ("check_op('cube')", lambda: check_op(spec, max_examples=2, **{name: value})),
        ("check_case('cube')", lambda: check_case(spec, Case((np.ones(2),), {}), **{name: value})),
        ("check_ops", lambda: check_ops([spec], 2, 0, **{name: value})),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"{who}: {name} must be a finite number {need}, got {value!r}"


# ---- the command --------------------------------------------------------------------------------


def run_gradcheck(*args: str, pythonpath: Path | None = None, block_hypothesis: bool = False):
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    if block_hypothesis:
        code = BLOCK_HYPOTHESIS + (
            "import sys\nfrom tinygrad_sgd.cli import main\n"
            f"sys.exit(main(['gradcheck', *{list(args)!r}]))\n"
        )
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "tinygrad_sgd", "gradcheck", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def _row(stdout: str, name: str) -> list[str]:
    for line in stdout.splitlines():
        if line.split() and line.split()[0] == name:
            return line.split()
    raise AssertionError(f"no row for {name} in:\n{stdout}")


def test_command_catches_each_planted_operation(planted) -> None:
    folder, _ = planted
    out = run_gradcheck(
        "--module",
        "planted_ops",
        "--ops",
        "planted_*,add",
        "--examples",
        "5",
        pythonpath=folder,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    for name in ["planted_cube_off", "planted_softmax_zero", "planted_wrong_axis"]:
        row = _row(out.stdout, name)
        assert row[1] == "5" and row[4] == "FAIL", row
    assert _row(out.stdout, "add")[4:] == ["ok", "ok"]
    assert "FAILED: planted_cube_off, planted_softmax_zero, planted_wrong_axis" in out.stdout


def test_command_passes_every_builtin_op_within_a_minute_without_hypothesis() -> None:
    out = run_gradcheck(block_hypothesis=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for op in OP_TABLE:
        row = _row(out.stdout, op.name)
        assert row[1] == "25" and row[4:] == ["ok", "ok"], row
        assert float(row[2]) < 1e-6 and float(row[3]) < 1e-5
    seconds = float(out.stdout.split(" cases in ")[1].split(" s")[0])
    assert seconds < 60
    assert "all passed" in out.stdout


def test_command_options() -> None:
    out = run_gradcheck("--ops", "exp,relu", "--examples", "3", "--seed", "4", "--first-order-only")
    assert out.returncode == 0, out.stderr
    assert _row(out.stdout, "exp")[1] == "3" and _row(out.stdout, "exp")[5] == "n/a"
    assert "add" not in [line.split()[0] for line in out.stdout.splitlines() if line.split()]
    listed = run_gradcheck("--list")
    assert listed.stdout.split() == [op.name for op in OP_TABLE]
    bad = run_gradcheck("--ops", "nope")
    assert bad.returncode == 2 and "no operation matches 'nope'" in bad.stderr
    bad = run_gradcheck("--module", "no_such_module_xyz")
    assert bad.returncode == 2 and "cannot import" in bad.stderr


def test_command_is_reproducible_by_seed() -> None:
    a = run_gradcheck("--ops", "softmax", "--examples", "4", "--seed", "3")
    b = run_gradcheck("--ops", "softmax", "--examples", "4", "--seed", "3")
    assert _row(a.stdout, "softmax") == _row(b.stdout, "softmax")


def test_command_fails_where_differences_overflow() -> None:
    """``--eps 1e10``: e^(x ± ε) is inf or 0, every difference is inf; that is a failure."""
    out = run_gradcheck("--ops", "exp", "--eps", "1e10", "--examples", "3", "--first-order-only")
    assert out.returncode == 1, out.stdout + out.stderr
    assert _row(out.stdout, "exp")[2:5] == ["inf", "inf", "FAIL"]
    assert "all passed" not in out.stdout and "not finite" in out.stdout


@pytest.mark.parametrize("name,value", BAD_SETTINGS)
def test_command_refuses_bad_settings_in_one_line(name, value, capsys) -> None:
    from tinygrad_sgd.cli import main

    code = main(
        ["gradcheck", "--ops", "exp", f"--{name}={value}"]
    )  # "=": argparse reads "-1e-07" as an option
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"error: --{name} must be a finite number {'> 0' if name == 'eps' else '>= 0'}, "
        f"got {float(value)!r}"
    ]


def test_check_op_has_no_deadline_without_our_conftest(tmp_path):
    """A user's suite runs check_op under Hypothesis's default profile (deadline 200 ms): a slow
    but correct op passes, and a wrong one gets OpCheckError, never DeadlineExceeded/Flaky."""
    code = textwrap.dedent(
        """
        import time, numpy as np
        from hypothesis import Phase, settings
        from tinygrad_sgd.testing import OpSpec, OpCheckError, check_op
        # Hypothesis's default deadline, 200 ms, set explicitly: with CI=true in the environment
        # Hypothesis loads its own "ci" profile (no deadline), which a user's laptop does not.
        # No shrinking, only to keep this test short.
        settings.register_profile("user", deadline=200, phases=[Phase.explicit, Phase.generate])
        settings.load_profile("user")
        assert settings.default.deadline is not None
        def slow_exp(x):
            time.sleep(0.3)  # each example takes longer than the 200 ms deadline
            return np.exp(x)
        check_op(OpSpec("slow_exp", lambda x: x.exp(), slow_exp), max_examples=2)
        try:
            check_op(OpSpec("wrong", lambda x: x.exp() * 1.5, np.exp), max_examples=5)
        except OpCheckError:
            print("OpCheckError")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "OpCheckError", out.stdout


@pytest.mark.parametrize("how", ["script", "-P"])
def test_gradcheck_module_is_found_in_the_current_directory(tmp_path, how):
    """``gradcheck --module mymod`` where mymod.py is, from the tinygrad-sgd script (whose
    sys.path[0] is its own folder) or ``python -P``: the current directory is searched."""
    (tmp_path / "mymod.py").write_text(
        "import numpy as np\n"
        "from tinygrad_sgd.testing import OpSpec\n"
        "OPS = [OpSpec('my_exp', lambda x: x.exp(), np.exp)]\n"
    )
    script = tmp_path / "bin" / "tinygrad-sgd"
    script.parent.mkdir()
    script.write_text("import sys\nfrom tinygrad_sgd.cli import main\nsys.exit(main())\n")
    launch = [str(script)] if how == "script" else ["-P", "-m", "tinygrad_sgd"]
    out = subprocess.run(
        [sys.executable, *launch, "gradcheck", "--module", "mymod", "--ops", "my_exp", "-n", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert "my_exp" in out.stdout
    assert "mymod" not in sys.modules  # the test process's own path is untouched
