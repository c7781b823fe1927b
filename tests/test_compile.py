"""tg.compile: a replayed step leaves exactly (bit for bit) what the eager step leaves."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim
from tinygrad_sgd.autograd import Context, Function

ACTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}



def _central_differences(cost, p, h=1e-6):
    """∂cost/∂p, one element of ``p.data`` at a time: (cost(p + h) − cost(p − h)) / 2h."""
    numeric = np.zeros_like(p.data)
    for i in np.ndindex(p.shape):
        keep = p.data[i]
        p.data[i] = keep + h
        up = cost()
        p.data[i] = keep - h
        numeric[i] = (up - cost()) / (2 * h)
        p.data[i] = keep
    return numeric

def make_net(sizes, act="sigmoid", seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    layers = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or act == "sigmoid":
            layers.append(ACTS[act]())
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.data = rng.standard_normal(p.shape).astype(dtype)
    return net


def step_of(opt, cost):
    """A training step: zero the gradients, c = cost(x, y), backward, update; returns c."""

    def step(x, y):
        opt.zero_grad()
        c = cost(x, y)
        c.backward()
        opt.step()
        return c

    return step


def book_step(net, opt):
    """The book's training step: the quadratic cost of net(x) against y."""
    return step_of(opt, lambda x, y: nn.functional.quadratic_cost(net(x), y))


def data(sizes, n, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    return X, Y


def train(compiled, sizes, act="sigmoid", cost="quadratic", opt_kw=None, steps=5, m=4,
          sched=False, dtype=np.float64, check=False):  # fmt: skip
    net = make_net(sizes, act, dtype=dtype)
    opt = optim.SGD(net.parameters(), **(opt_kw or {"lr": 0.5}))
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if sched else None
    costf = {
        "quadratic": nn.functional.quadratic_cost,
        "cross-entropy": nn.functional.cross_entropy,  # softmax from the logits
    }[cost]

    step = step_of(opt, lambda x, y: costf(net(x), y))

    if compiled:
        step = tg.compile(step, check=check)
    X, Y = data(sizes, steps * m, dtype=dtype)
    costs = []
    for k in range(steps):
        costs.append(step(X[k * m : (k + 1) * m], Y[k * m : (k + 1) * m]).data.copy())
        if scheduler is not None:
            scheduler.step()
    params = [p.data.copy() for p in net.parameters()]
    grads = [p.grad.data.copy() for p in net.parameters()]
    state = [opt.state.get(p, {}).get("momentum_buffer") for p in net.parameters()]
    return params, grads, state, costs, step


def assert_identical(a, b):
    for xa, xb in zip(a[:4], b[:4]):
        assert len(xa) == len(xb)
        for u, v in zip(xa, xb):
            if u is None or v is None:
                assert u is None and v is None
            else:
                assert u.dtype == v.dtype and np.array_equal(u, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_book_network_bit_identical(dtype):
    sizes = [64, 30, 10]
    eager = train(False, sizes, dtype=dtype, steps=6, m=10, opt_kw={"lr": 3.0})
    comp = train(True, sizes, dtype=dtype, steps=6, m=10, opt_kw={"lr": 3.0})
    assert_identical(eager, comp)
    step = comp[4]
    assert step.records == 2  # recorded, verified, then replayed 4 times
    text = step.program
    # every kernel of the book's step has an out= form: nothing runs an op's own formula
    for kernel in ("Linear:", "Sigmoid:", "QuadraticCost:", "QuadraticCost.backward:",
                   "Sigmoid.backward:", "Linear.backward:", "SGD.step (in place)"):  # fmt: skip
        assert kernel in text
    assert "its formula" not in text and "matmul(" in text


@pytest.mark.parametrize(
    "lr",
    [0.1, 1 / 3, 3, np.float64(0.1), np.float32(0.1), 1e-45],
    ids=["float", "third", "int", "np.float64", "np.float32", "subnormal-in-f32"],
)
def test_learning_rate_of_any_type_updates_as_eager_in_float32(lr):
    """The replay writes a Python float η into a 0-d float32 array once, and passes any other η
    as eager does: either way the float32 parameters get eager's bits (η = 0.1 and 1/3 round
    in float32; a NumPy float64 η is not rounded first; 1e-45 rounds to a subnormal)."""
    sizes = [12, 7, 4]
    eager = train(False, sizes, dtype=np.float32, steps=5, m=3, opt_kw={"lr": lr}, sched=True)
    comp = train(True, sizes, dtype=np.float32, steps=5, m=3, opt_kw={"lr": lr}, sched=True)
    assert_identical(eager, comp)
    for u, v in zip(eager[0], comp[0]):
        assert u.tobytes() == v.tobytes()
    assert comp[4].records == 2 and "SGD.step (in place)" in comp[4].program


def test_sigmoid_range_check_takes_eagers_branch_at_every_replay():
    """Eager's sigmoid takes its fast path only when min z ≥ −L (L = 86 in float32), else its
    stable form, and a NaN takes the stable form too: the replay decides the same way at each
    step (batches alternate between z inside and far outside ±L), so its bits are eager's."""
    sizes = [6, 5, 3]
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8 * 4, 6)).astype(np.float32)
    X[4:8] *= 400  # z far below −86 in some rows: the stable branch
    X[12:16] *= 400
    X[28, 2] = np.nan  # the last batch: NaN reaches z
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, len(X))]
    results = []
    for compiled in (False, True):
        net = make_net(sizes, dtype=np.float32)
        opt = optim.SGD(net.parameters(), lr=0.25)

        step = book_step(net, opt)
        run = tg.compile(step) if compiled else step
        costs, params = [], []
        with np.errstate(invalid="ignore"):  # the NaN batch
            for k in range(0, len(X), 4):
                costs.append(run(X[k : k + 4], Y[k : k + 4]).data.tobytes())
                params.append(b"".join(p.data.tobytes() for p in net.parameters()))
        results.append((costs, params))
        if compiled:
            assert run.records == 2 and "argmin" in run.program
    assert results[0] == results[1]


@settings(max_examples=25, deadline=None)
@given(
    depth=st.integers(1, 3),
    width=st.integers(1, 6),
    act=st.sampled_from(sorted(ACTS)),
    cost=st.sampled_from(["quadratic", "cross-entropy"]),
    momentum=st.sampled_from([0.0, 0.9]),
    nesterov=st.booleans(),
    wd=st.sampled_from([0.0, 1e-2]),
    sched=st.booleans(),
    m=st.integers(1, 5),
)
def test_random_networks_bit_identical(depth, width, act, cost, momentum, nesterov, wd, sched, m):
    sizes = [3] + [width] * depth + [4]
    kw = {"lr": 0.3, "momentum": momentum, "nesterov": nesterov and momentum > 0,
          "weight_decay": wd}  # fmt: skip
    eager = train(False, sizes, act, cost, kw, steps=5, m=m, sched=sched)
    comp = train(True, sizes, act, cost, kw, steps=5, m=m, sched=sched)
    assert_identical(eager, comp)


def test_short_last_batch_records_again():
    sizes = [5, 4, 3]
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=1.0)

    step = tg.compile(book_step(net, opt))
    X, Y = data(sizes, 30)
    for k in range(3):
        step(X[k * 8 : (k + 1) * 8], Y[k * 8 : (k + 1) * 8])
    assert step.records == 2
    step(X[24:], Y[24:])  # 6 rows: a new signature
    assert step.records == 3


def test_guards_record_again_on_new_arrays_requires_grad_and_grad_mode():
    sizes = [5, 4, 3]
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=1.0)

    step = tg.compile(book_step(net, opt))
    X, Y = data(sizes, 4)
    for _ in range(3):
        step(X, Y)
    assert step.records == 2
    net.load_state_dict(net.state_dict())  # new arrays? then the guard must notice
    w = net[0].weight
    w.data = w.data.copy()  # certainly a new array: replaying would update the old one
    step(X, Y)
    assert step.records == 3
    before = net[0].weight.data.copy()
    step(X, Y)  # verified again
    step(X, Y)  # replay updates the new array
    assert step.records == 4 and not np.array_equal(before, net[0].weight.data)
    net[0].bias.requires_grad = False
    step(X, Y)
    assert step.records == 5
    with tg.no_grad():
        with pytest.raises(RuntimeError, match="does not require grad"):
            step(X, Y)  # a new signature (grad mode is part of it), recorded: raises as eager


def test_replay_equals_eager_after_load_state_dict():
    sizes = [5, 4, 3]
    X, Y = data(sizes, 4)
    results = []
    for compiled in (False, True):
        net = make_net(sizes)
        opt = optim.SGD(net.parameters(), lr=1.0)
        snapshot = {k: Tensor(v.data.copy()) for k, v in net.state_dict().items()}

        step = book_step(net, opt)
        step = tg.compile(step) if compiled else step
        for _ in range(3):
            step(X, Y)
        net.load_state_dict(snapshot)
        for p in net.parameters():
            p.data = p.data.copy()
        for _ in range(3):
            step(X, Y)
        results.append([p.data.copy() for p in net.parameters()])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("read", ["item", "bool", "float", "int", "numpy"])
def test_value_reads_while_recording_raise(read):
    net = make_net([3, 2])
    X, Y = data([3, 2], 1)

    @tg.compile
    def step(x, y):
        c = nn.functional.quadratic_cost(net(x), y)
        {"item": c.item, "bool": lambda: bool(c), "float": lambda: float(c),
         "int": lambda: int(c), "numpy": c.numpy}[read]()  # fmt: skip
        return c

    with pytest.raises(RuntimeError, match="while tg.compile records"):
        step(X, Y)
    assert float(Tensor(2.0)) == 2.0  # outside recording, reads work again


def test_data_dependent_constant_is_refused():
    net = make_net([3, 4, 2])
    opt = optim.SGD(net.parameters(), lr=1.0)
    rng = np.random.default_rng(0)

    @tg.compile
    def step(x, labels):
        opt.zero_grad()
        c = nn.functional.quadratic_cost(net(x), labels)  # one-hot made inside: a constant
        c.backward()
        opt.step()
        return c

    X = rng.standard_normal((6, 3))
    step(X, np.array([0, 1, 0, 1, 1, 0]))
    with pytest.raises(tg.CompileError, match="one-hot"):
        step(X, np.array([1, 1, 0, 0, 1, 0]))


def test_manual_update_outside_the_optimizer_is_refused():
    net = make_net([3, 4, 2])
    X, Y = data([3, 4, 2], 3)

    @tg.compile
    def step(x, y):
        net.zero_grad()
        c = nn.functional.quadratic_cost(net(x), y)
        c.backward()
        for p in net.parameters():
            p.data -= 0.1 * p.grad.data  # not a recorded kernel: the replay would skip it
        return c

    step(X, Y)
    with pytest.raises(tg.CompileError, match="differs from eager"):
        step(X, Y)


class RandomScale(Function):
    """z = u x with u drawn from a global RNG at every call: an op with randomness."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.u = np.random.default_rng().random()
        return x * ctx.u

    @staticmethod
    def backward(ctx: Context, g):
        return g * ctx.u


def test_an_op_drawing_random_numbers_is_refused():
    w = Tensor(np.ones(3), requires_grad=True)

    @tg.compile
    def step(x):
        c = RandomScale.apply(w * x).sum()
        c.backward()
        return c

    with pytest.raises(tg.CompileError, match="random"):
        step(np.ones(3))


def test_check_catches_a_broken_kernel():
    sizes = [4, 3, 2]
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=1.0)
    X, Y = data(sizes, 5)

    step = book_step(net, opt)
    compiled = tg.compile(step, check=True)
    compiled(X, Y)
    compiled(X, Y)  # verified; check=True: the next 3 calls are compared with eager too
    lowered = next(iter(compiled._programs.values())).lowered
    original = lowered.replay

    def broken(*arrays):
        out = original(*arrays)
        w = net[0].weight
        w.grad.data *= 1 + 1e-12  # one rounding-sized error in a kernel's result
        return out

    lowered.replay = broken
    with pytest.raises(tg.CompileError, match="differs from eager in the .grad"):
        compiled(X, Y)


def test_bare_decorator_and_returned_tensor_has_no_graph():
    net = make_net([3, 2])
    opt = optim.SGD(net.parameters(), lr=0.1)
    X, Y = data([3, 2], 2)

    @tg.compile
    def step(x, y):
        opt.zero_grad()
        c = nn.functional.quadratic_cost(net(x), y)
        c.backward()
        opt.step()
        return c, None

    outs = [step(X, Y) for _ in range(4)]
    c, none = outs[-1]
    assert isinstance(c, Tensor) and none is None and not c.requires_grad and c.shape == ()


def test_fused_kernels_give_the_gradient_of_finite_differences():
    """The lowered Linear, Sigmoid and quadratic-cost kernels (forward and backward) in float64:
    the replayed .grad against central differences of C = 1/2m Σ‖y − σ(W² σ(W¹ x + b¹) + b²)‖²."""
    sizes = [4, 3, 2]
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=0.0)
    X, Y = data(sizes, 5)

    @tg.compile
    def step(x, y):
        opt.zero_grad()
        c = nn.functional.quadratic_cost(net(x), y)
        c.backward()
        return c

    for _ in range(3):  # record, verify, replay
        step(X, Y)
    assert "its formula" not in step.program
    params = list(net.parameters())

    def cost():
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        a = sig(sig(X @ params[0].data.T + params[1].data) @ params[2].data.T + params[3].data)
        return 0.5 / len(X) * np.sum((Y - a) ** 2)

    for p in params:
        numeric = _central_differences(cost, p)
        # central differences: error O(h²) plus rounding ε·C/h ≈ 1e-10
        np.testing.assert_allclose(p.grad.data, numeric, rtol=1e-6, atol=1e-9)


def test_numbers_written_in_the_step_are_constants():
    sizes = [3, 4, 2]
    X, Y = data(sizes, 5)
    results = []
    for compiled in (False, True):
        net = make_net(sizes, act="tanh")
        opt = optim.SGD(net.parameters(), lr=0.1)

        def step(x, y, net=net, opt=opt):
            opt.zero_grad()
            z = net(x)
            c = nn.F.binary_cross_entropy_with_logits(z, y, reduction="sum") * (1.0 / len(z))
            c.backward()
            opt.step()
            return c

        step = tg.compile(step) if compiled else step
        costs = [step(X, Y).data.copy() for _ in range(5)]
        results.append((costs, [p.data.copy() for p in net.parameters()]))
    for a, b in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_dropout_draws_a_fresh_mask_at_every_replay():
    sizes = [6, 5, 3]
    X, Y = data(sizes, 4)
    runs = []
    for compiled in (False, True):
        net = make_net(sizes)
        layers = list(net)
        net = nn.Sequential(layers[0], layers[1], nn.Dropout(0.5, seed=7), *layers[2:])
        opt = optim.SGD(net.parameters(), lr=0.5)

        step = book_step(net, opt)
        step = tg.compile(step) if compiled else step
        grads = []
        for _ in range(6):
            step(X, Y)
            grads.append(net[0].weight.grad.data.copy())
        runs.append((grads, [p.data.copy() for p in net.parameters()]))
        if compiled:
            assert step.records == 2 and "draw" in step.program
    (g_eager, p_eager), (g_comp, p_comp) = runs
    for a, b in zip(g_eager + p_eager, g_comp + p_comp):
        assert np.array_equal(a, b)
    # a frozen mask would give the same gradient at every step (same batch, lr moves little)
    assert len({g.tobytes() for g in g_comp}) == len(g_comp)
    zeroed = [set(np.flatnonzero(np.all(g == 0, axis=1))) for g in g_comp]
    assert len({frozenset(z) for z in zeroed}) > 1


def test_fallback_runs_a_step_with_a_hook_eagerly():
    sizes = [3, 4, 2]
    X, Y = data(sizes, 3)
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=0.1)
    seen = []
    net[0].weight.register_hook(lambda g: seen.append(1) or g)

    step = book_step(net, opt)
    with pytest.raises(tg.CompileError, match="hooks"):
        tg.compile(step)(X, Y)
    before = len(seen)
    compiled = tg.compile(step, fallback=True)
    for _ in range(3):
        compiled(X, Y)
    assert compiled.fallback_reason is not None and "hooks" in compiled.fallback_reason
    assert len(seen) - before == 3  # the hook ran at every call: eager


def test_a_step_under_trace_runs_eagerly():
    sizes = [3, 2]
    net = make_net(sizes)
    opt = optim.SGD(net.parameters(), lr=0.1)
    X, Y = data(sizes, 2)

    step = tg.compile(book_step(net, opt))
    for _ in range(3):
        step(X, Y)
    assert step.records == 2
    with tg.trace() as t:
        step(X, Y)
    assert step.records == 2 and len(t.steps) > 0  # the tracer saw the eager backward


class _Scale(tg.Function):
    """z = k x, with k passed as a keyword argument."""

    array_backward = True

    @staticmethod
    def forward(ctx, x, *, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k


def test_ops_called_with_keyword_arguments_replay_them():
    """The observer point passes an op's keyword arguments (a custom op's k, concatenate's
    axis): the program replays them, bit for bit as eager (such a step could not be compiled)."""
    rng = np.random.default_rng(0)
    X = rng.random((4, 3))

    def make():
        w = Tensor(rng.random((3, 2)), requires_grad=True)
        opt = optim.SGD([w], lr=0.1)

        def step(x):
            opt.zero_grad()
            h = _Scale.apply(x @ w, k=2.0)
            c = (tg.concatenate([h, h * h], axis=1) ** 2).sum()
            c.backward()
            opt.step()
            return c

        return w, step

    (w_eager, eager), (w_comp, comp) = make(), make()
    w_comp.data[...] = w_eager.data
    compiled = tg.compile(comp)
    for _ in range(4):
        np.testing.assert_array_equal(compiled(X).numpy(), eager(Tensor(X)).numpy())
        np.testing.assert_array_equal(w_comp.data, w_eager.data)
    assert compiled.records == 2  # recorded, verified, then replayed twice
    assert "k=2.0" in str(compiled.program) and "axis=1" in str(compiled.program)


# ---------------------------------------------------------------- chapter 3: cross-entropy, L2, L1


def xent_step(body, opt, lmbda=0.0, l1=0.0, n=1000):
    """``train.fit``'s step for the cross-entropy: C = (1/m) Σ [softplus(z) − y z] from the last
    layer's z, plus (λ/2n) Σ w² and (λ₁/n) Σ |w| over the weights, built as fit builds them."""
    weights = [p for p in body.parameters() if p.ndim >= 2]

    def step(x, y):
        opt.zero_grad()
        z = body(x)
        c = nn.F.binary_cross_entropy_with_logits(z, y, reduction="sum") * (1.0 / len(z))
        terms = [nn.F.l2_penalty(weights, lmbda, n)] if lmbda else []
        terms += [nn.F.l1_penalty(weights, l1, n)] if l1 else []
        if terms:
            c = c + sum(terms[1:], terms[0])
        c.backward()
        opt.step()
        return c

    return step


def run_both(make, batches, warn=False):
    """Eager, then compiled: (costs, params, .grad bytes, warnings) after each batch."""
    results = []
    for compiled in (False, True):
        body, step = make()
        run = tg.compile(step) if compiled else step
        per_step = []
        for x, y in batches:
            with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
                warnings.simplefilter("always")
                c = run(x, y) if compiled else run(Tensor(x), Tensor(y))
            said = [(w.category.__name__, str(w.message)) for w in caught] if warn else []
            per_step.append((
                c.data.tobytes(),
                [p.data.tobytes() for p in body.parameters()],
                [p.grad.data.tobytes() for p in body.parameters()],
                said,
            ))  # fmt: skip
        results.append(per_step)
    return results[0], results[1], run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lmbda,l1", [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 2.0)],
                         ids=["plain", "l2", "l1", "l2+l1"])  # fmt: skip
def test_cross_entropy_and_penalties_bit_identical(dtype, lmbda, l1):
    """fit's cross-entropy step, with --lmbda and --l1, replayed over 6 batches: cost, weights
    and .grad have eager's bits, and every kernel runs its lowered form."""
    sizes = [8, 6, 4]
    X, Y = data(sizes, 30, dtype=dtype)

    def make():
        body = make_net(sizes, dtype=dtype)[:-1]  # the cost takes the last layer's z
        return body, xent_step(body, optim.SGD(body.parameters(), lr=0.5), lmbda, l1, n=30)

    eager, comp, step = run_both(make, [(X[k : k + 5], Y[k : k + 5]) for k in range(0, 30, 5)])
    assert comp == eager
    assert step.records == 2  # recorded, verified, then replayed 4 times
    text = step.program
    assert "its formula" not in text and "engine's rule" not in text
    kernels = ["SigmoidBinaryCrossEntropy:", "SigmoidBinaryCrossEntropy.backward:", "Mul:",
               "Mul.backward:"]  # fmt: skip
    kernels += ["Add:", "Add.backward:", "Sum:", "Sum.backward:"] if lmbda or l1 else []
    kernels += ["Abs:", "Abs.backward:"] if l1 else []
    for kernel in kernels:
        assert kernel in text
    assert "folded once" in text  # backward's seed times 1/m: a constant of the program


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_takes_eagers_branches_and_warnings_at_every_replay(dtype):
    """Batches of z inside ±L, far below −L (the stable form of σ in the backward), and NaN, in
    turn, after the step is verified: each replay gives eager's bits and, under
    np.errstate(all="warn"), eager's warnings.  The z are chosen so that e^(−|z|) underflows in
    softplus, in the stable σ and in δ·(σ − y) on both of σ's paths (f32: σ(−85.99)/4 is
    subnormal), underflows that eager ignores, and the replay must too."""
    rng = np.random.default_rng(5)
    lim = {np.float32: 86.0, np.float64: 707.0}[dtype]  # L of eager's range check
    band = {np.float32: -95.0, np.float64: -720.0}[dtype]  # e^z subnormal, below −L
    edge = {np.float32: -85.99, np.float64: -700.0}[dtype]  # just inside: the fast path
    Z = rng.standard_normal((6, 4, 3))
    Z[1, 0] = [band, -30 * lim, 3.0]
    Z[3, 1] = [edge, 30 * lim, edge]  # +30L: softplus of a large z, the fast path all the same
    Z[4, 2] = [band, 2.0, -lim - 1]
    Z[5, 3, 1] = np.nan
    Y = np.zeros((6, 4, 3))
    Y[Z > 0] = 1  # y = 0 where z is far below: σ − y = σ, subnormal
    X = np.concatenate([Z, rng.standard_normal((6, 4, 3))], axis=2).astype(dtype)
    Y = Y.astype(dtype)

    def make():
        body = nn.Sequential(nn.Linear(6, 3))  # z = W x + b = the first 3 columns of x
        w = np.zeros((3, 6), dtype)
        w[:, :3] = np.eye(3)
        body[0].weight.data, body[0].bias.data = w, np.zeros(3, dtype)
        return body, xent_step(body, optim.SGD(body.parameters(), lr=0.0))  # z stays as chosen

    batches = list(zip(X, Y))
    eager, comp, step = run_both(make, batches, warn=True)
    assert [c[:3] for c in comp] == [e[:3] for e in eager]  # cost, weights, .grad
    # the warnings of each call (call 1 verifies: it replays and runs eagerly, so it warns twice)
    assert [c[3] for c in comp[:1] + comp[2:]] == [e[3] for e in eager[:1] + eager[2:]]
    assert step.records == 2 and "argmin" in step.program
    assert "errstate(under='ignore')" in step.program
    fast = [bool(np.min(x[:, :3]) >= -lim) for x in X]
    assert fast == [True, False, True, True, False, False] and np.isnan(X[5]).any()
    # the cost's underflows are eager's to ignore (here the layer's δᵀ x may warn of its own)
    said = [msg for *_, calls in eager[:5] for _, msg in calls]
    assert all(msg == "underflow encountered in matmul" for msg in said)


def test_a_backward_on_constants_that_overflows_is_not_folded():
    """δ·c on constants is computed once at lowering, unless it raises a floating-point flag:
    then eager warns at every step (here 1e10 · 1e30 overflows float32) and so must the replay."""
    w0 = np.random.default_rng(0).random((3, 2), dtype=np.float32)
    x = np.ones((3, 2), np.float32)
    runs = []
    for compiled in (False, True):
        w = Tensor(w0, requires_grad=True)
        opt = optim.SGD([w], lr=0.0)

        def step(x, w=w, opt=opt):
            opt.zero_grad()
            c = (w * x).sum() * 1e30
            c.backward(Tensor(np.float32(1e10)))  # a constant seed: δ·1e30 = inf
            return c

        run = tg.compile(step) if compiled else step
        said = []
        for _ in range(4):
            with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn"):
                warnings.simplefilter("always")
                run(x if compiled else Tensor(x))
            said.append([str(m.message) for m in caught])
        runs.append((said, w.grad.data.copy()))
        if compiled:
            assert run.records == 2 and "folded" not in run.program
    (said_eager, g_eager), (said_comp, g_comp) = runs
    # (call 1 verifies: it replays and runs eagerly, so it warns twice)
    assert [said_comp[k] for k in (0, 2, 3)] == [said_eager[k] for k in (0, 2, 3)]
    assert all(s == ["overflow encountered in multiply"] for s in said_eager)
    assert np.array_equal(g_eager, g_comp) and np.isinf(g_comp).all()


def test_cross_entropy_and_penalties_give_the_gradient_of_finite_differences():
    """The lowered cross-entropy, Mul, Add, Sum and Abs kernels in float64: the replayed .grad
    against central differences of C = (1/m) Σ [softplus(z) − y z] + (λ/2n) Σ w² + (λ₁/n) Σ |w|,
    z = W² σ(W¹ x + b¹) + b²."""
    sizes = [4, 3, 2]
    body = make_net(sizes)[:-1]
    X, Y = data(sizes, 5)
    lmbda, l1, n = 3.0, 2.0, 7
    step = tg.compile(xent_step(body, optim.SGD(body.parameters(), lr=0.0), lmbda, l1, n))
    for _ in range(3):  # record, verify, replay
        step(X, Y)
    assert "its formula" not in step.program
    params = list(body.parameters())

    def cost():
        w1, b1, w2, b2 = (p.data for p in params)
        z = 1 / (1 + np.exp(-(X @ w1.T + b1))) @ w2.T + b2
        ce = np.sum(np.logaddexp(0, z) - Y * z) / len(X)
        return ce + lmbda / (2 * n) * (np.sum(w1**2) + np.sum(w2**2)) + l1 / n * (
            np.sum(np.abs(w1)) + np.sum(np.abs(w2)))  # fmt: skip

    for p in params:
        numeric = _central_differences(cost, p)
        assert np.min(np.abs(p.data)) > 1e-3  # |w| has no kink within h of any weight
        # central differences: error O(h²) plus rounding ε·C/h ≈ 1e-9
        np.testing.assert_allclose(p.grad.data, numeric, rtol=1e-6, atol=1e-8)


def test_mul_add_sum_abs_forms_over_axes_and_computed_gradients():
    """The elementwise forms where δ is computed (Add's backward passes a buffer on, Sum's
    broadcasts one back over an axis), a square w·w and a fan-out: eager's bits, all lowered."""
    sizes = [5, 3]
    X, _ = data(sizes, 12)

    def make():
        body = make_net(sizes)[:-1]
        opt = optim.SGD(body.parameters(), lr=0.05)

        def step(x, y):
            opt.zero_grad()
            z = body(x)  # (m, 3)
            r = (z * z).sum(axis=1)  # (m,): a Sum over one axis
            c = ((r.abs() + r * 0.5) * r).sum() * (1.0 / len(z))  # δ of the Add: computed
            c.backward()
            opt.step()
            return c

        return body, step

    eager, comp, step = run_both(make, [(X[k : k + 4], X[k : k + 4]) for k in range(0, 12, 4)])
    assert comp == eager
    text = step.program
    assert "its formula" not in text and "broadcast_to(" in text and ".reshape((4, 1))" in text
    assert "Add.backward" in text and " = s" in text.split("Add.backward")[1].splitlines()[1]


def test_elementwise_ops_that_broadcast_a_gradient_run_their_formula():
    """A Mul or Add whose gradient must be summed back to a broadcast input (a row v of a
    batch) has no form: it runs its own formula, and the step keeps eager's bits."""
    sizes = [5, 3]
    X, _ = data(sizes, 12)

    def make():
        body = make_net(sizes)[:-1]
        v = Tensor(np.linspace(0.5, 1.5, 3), requires_grad=True)
        body.v = v  # a parameter of the model, so run_both compares it too
        opt = optim.SGD(body.parameters(), lr=0.05)

        step = step_of(opt, lambda x, y: ((body(x) * v + v) ** 2).sum() * (1.0 / len(x)))

        return body, step

    eager, comp, step = run_both(make, [(X[k : k + 4], X[k : k + 4]) for k in range(0, 12, 4)])
    assert comp == eager
    assert "Mul (its formula)" in step.program and "Add (its formula)" in step.program


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_logits_mean_bit_identical(dtype):
    """reduction="mean": the cost's scale 1/(m·k) in the sum and in δ·scale (folded once)."""
    sizes = [7, 5, 3]
    X, Y = data(sizes, 15, dtype=dtype)

    def make():
        body = make_net(sizes, dtype=dtype)[:-1]
        opt = optim.SGD(body.parameters(), lr=2.0)

        step = step_of(opt, lambda x, y: nn.F.binary_cross_entropy_with_logits(body(x), y))

        return body, step

    eager, comp, step = run_both(make, [(X[k : k + 3], Y[k : k + 3]) for k in range(0, 15, 3)])
    assert comp == eager
    assert "its formula" not in step.program and "folded once" in step.program


def test_a_gradient_that_is_a_view_keeps_its_buffer_until_its_last_reader():
    """Sum's backward broadcasts δ (a buffer) back as a view, which the layers' backward read
    later: the buffer must not be given to another slot before then (here the last layer's
    ∂C/∂x, written first, then its ∂C/∂W reads the view)."""
    sizes = [5, 3, 3]
    X, _ = data(sizes, 12)

    def make():
        body = make_net(sizes)[:-1]
        opt = optim.SGD(body.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            z = body(x)  # (m, 3)
            s = z.reshape(len(x), 3, 1).sum(axis=2)  # Sum.backward: a (m, 3, 1) view of δ
            c = (s * s).sum() * (1.0 / len(x))  # δ of s: 2 s / m, a buffer
            c.backward()
            opt.step()
            return c

        return body, step

    eager, comp, step = run_both(make, [(X[k : k + 4], X[k : k + 4]) for k in range(0, 12, 4)])
    assert comp == eager
    assert "broadcast_to(" in step.program


def test_an_elementwise_result_in_fortran_order_runs_its_formula():
    """Eager's w.T · w.T is in Fortran order (NumPy follows its operands'), and its sum adds in
    that memory order: the Mul keeps its formula (a buffer would be in C order, summed in
    another order), and the cost keeps eager's bits."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 40))
    w0, b0 = rng.standard_normal((30, 40)), rng.standard_normal(30)

    def make():
        body = nn.Sequential(nn.Linear(40, 30))
        body[0].weight.data, body[0].bias.data = w0.copy(), b0.copy()
        opt = optim.SGD(body.parameters(), lr=0.01)

        def step(x, y):
            opt.zero_grad()
            wt = body[0].weight.T  # (40, 30), a view in Fortran order
            c = (wt * wt).sum() + (body(x) * body(x)).sum() * 1e-9  # the sum's last bits
            c.backward()
            opt.step()
            return c

        return body, step

    eager, comp, step = run_both(make, [(X, X)] * 4)
    assert comp == eager
    assert "Mul (its formula)" in step.program and "Mul:" in step.program


def test_a_constant_gradient_is_a_fresh_array_at_every_replay():
    """∂C/∂w of C = Σ 3 w + Σ x² is the constant 3 (folded once): each replay gives .grad a
    copy, as eager gives a fresh array, so a write into .grad between steps changes nothing
    after."""
    X = np.arange(6.0).reshape(2, 3)
    runs = []
    for compiled in (False, True):
        w = Tensor(np.full(3, 0.5), requires_grad=True)
        opt = optim.SGD([w], lr=0.1)

        def step(x, w=w, opt=opt):
            opt.zero_grad()
            c = (w * 3.0).sum() + (x * x).sum()
            c.backward()
            opt.step()
            return c

        run = tg.compile(step) if compiled else step
        seen = []
        for _ in range(5):
            run(X if compiled else Tensor(X))
            seen.append((w.grad.data.copy(), w.data.copy()))
            w.grad.data[...] = 99.0  # the user's write, between steps
        runs.append(seen)
        if compiled:
            assert "a constant, copied" in run.program
    for (g_e, w_e), (g_c, w_c) in zip(*runs):
        assert (g_e == 3.0).all() and (g_c == 3.0).all() and w_e.tobytes() == w_c.tobytes()
