"""tg.compile and Python state the step depends on: a learning-rate schedule stepped inside the
step, the train()/eval() mode of the modules it calls, dropout's p, hooks registered on a
parameter after the recording.  A replay must leave exactly what an eager call leaves, or
record again (or refuse); never run a stale program."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim
from tinygrad_sgd.compile import CompileError

RNG = np.random.default_rng(0)
X = RNG.random((48, 6))
Y = np.eye(3)[RNG.integers(0, 3, 48)]
BATCHES = [(X[k : k + 6], Y[k : k + 6]) for k in range(0, 48, 6)]


def _net(dropout: bool = False) -> nn.Module:
    tg.manual_seed(3)
    layers: list[nn.Module] = [nn.Linear(6, 5), nn.Sigmoid()]
    if dropout:
        layers.append(nn.Dropout(0.5, seed=7))
    return nn.Sequential(*layers, nn.Linear(5, 3), nn.Sigmoid())


def _same_parameters(a: nn.Module, b: nn.Module) -> bool:
    return all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))


def _train_step(net: nn.Module, opt: optim.SGD, after=None):
    """The book's step; ``after()`` (a schedule's step, say) runs after the update."""

    def step(x, y):
        opt.zero_grad()
        cost = nn.F.quadratic_cost(net(x), y)
        cost.backward()
        opt.step()
        if after is not None:
            after()
        return cost

    return step


def _eager_and_compiled(before_call, dropout: bool = False, **compile_options):
    """The book's step over BATCHES, eagerly and compiled, calling ``before_call(k, net)``
    before call k; returns the two networks and the costs of each run."""
    runs = []
    for compiled in (False, True):
        net = _net(dropout)
        fn = _train_step(net, optim.SGD(net.parameters(), lr=0.5))
        fn = tg.compile(fn, **compile_options) if compiled else fn
        costs = []
        for k, (x, y) in enumerate(BATCHES):
            before_call(k, net)
            costs.append(fn(x, y).numpy().copy())
        runs.append((net, costs))
    (eager_net, eager_costs), (net, costs) = runs
    return eager_net, net, eager_costs, costs


@pytest.mark.parametrize(
    "make_schedule",
    [
        lambda opt: optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        lambda opt: optim.lr_scheduler.ExponentialLR(opt, gamma=0.8),
        lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5),
    ],
    ids=["StepLR", "ExponentialLR", "CosineAnnealingLR"],
)
@pytest.mark.parametrize("check", [False, True])
def test_a_schedule_stepped_inside_the_step_runs_at_every_replay(make_schedule, check) -> None:
    """scheduler.step() per mini-batch inside the step (as with PyTorch's OneCycleLR): the
    rates, the schedule and the weights after every call are eager's."""
    runs = []
    for compiled in (False, True):
        net = _net()
        opt = optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
        sched = make_schedule(opt)
        step = _train_step(net, opt, after=sched.step)
        fn = tg.compile(step, check=check) if compiled else step
        history = []
        for x, y in BATCHES:
            cost = fn(x, y)
            history.append((cost.numpy().copy(), sched.get_last_lr(), sched.last_epoch))
        runs.append((net, history, fn))
    (eager_net, eager_history, _), (net, history, fn) = runs
    assert fn.records < len(BATCHES)  # some calls were replays: the schedule ran in them too
    assert _same_parameters(net, eager_net)
    for (c1, lr1, t1), (c2, lr2, t2) in zip(history, eager_history):
        assert np.array_equal(c1, c2) and lr1 == lr2 and t1 == t2


def test_a_schedule_given_a_different_epoch_at_each_call_is_refused() -> None:
    """sched.step(epoch) with the epoch read from outside the step: a constant a replay would
    freeze, so the second call (the verification) refuses the step instead of replaying it."""
    net = _net()
    opt = optim.SGD(net.parameters(), lr=0.5)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    epoch = 0
    step = tg.compile(_train_step(net, opt, after=lambda: sched.step(epoch)))
    step(*BATCHES[0])
    epoch = 1
    with pytest.raises(CompileError, match="different kernels"):
        step(*BATCHES[1])


def test_a_dropout_step_follows_train_and_eval_between_calls() -> None:
    """Modes switched between calls (eval() to evaluate, then training resumed, or not): each
    call does what eager does in the mode it finds, with the same dropout masks."""
    modes = [True, True, True, False, False, True, False, True]
    eager_net, net, eager_costs, costs = _eager_and_compiled(
        lambda k, net: net.train(modes[k]), dropout=True
    )
    assert _same_parameters(net, eager_net)
    assert all(np.array_equal(a, b) for a, b in zip(costs, eager_costs))


def _compiled_forward(net: nn.Module):
    """net(x) without a graph (an evaluation), compiled."""
    return tg.compile(lambda x: _evaluate(net, x))


def _evaluate(net: nn.Module, x):
    with tg.no_grad():
        return net(x)


def test_a_compiled_forward_recorded_in_eval_mode_drops_units_after_train() -> None:
    """The stale-program case: a function recorded, verified and replayed in eval mode must not
    keep skipping dropout once the network is put back into training mode."""
    net = _net(dropout=True)
    forward = _compiled_forward(net)

    net.eval()
    for _ in range(3):
        evaluated = forward(X[:6]).numpy().copy()
    net.train()
    trained = forward(X[:6]).numpy().copy()
    net.eval()
    assert not np.array_equal(trained, evaluated)  # dropout ran
    assert np.array_equal(forward(X[:6]).numpy(), evaluated)


class _Noisy(nn.Module):
    """A user's module whose forward branches on ``self.training``."""

    def forward(self, a: Tensor) -> Tensor:
        return a * 2.0 if self.training else a


def test_a_users_module_that_branches_on_training_is_guarded_too() -> None:
    lin = nn.Linear(6, 3)
    net = nn.Sequential(lin, _Noisy())
    forward = _compiled_forward(net)

    net.train()
    for _ in range(3):
        doubled = forward(X[:6]).numpy().copy()
    net.eval()
    plain = forward(X[:6]).numpy()
    with tg.no_grad():
        expected = lin(X[:6]).numpy()
    assert np.array_equal(plain, expected)
    assert np.array_equal(doubled, 2.0 * expected)


def test_a_dropout_probability_changed_between_calls_records_again() -> None:
    """Annealing dropout (p changed between calls) takes effect, as eagerly."""

    def anneal(k: int, net: nn.Module) -> None:
        if k == 4:
            net[2].p = 0.2

    eager_net, net, eager_costs, costs = _eager_and_compiled(anneal, dropout=True)
    assert _same_parameters(net, eager_net)
    assert all(np.array_equal(a, b) for a, b in zip(costs, eager_costs))


def test_a_hook_added_after_recording_is_not_skipped_by_a_replay() -> None:
    """Eager runs a hook registered on a parameter; a recording refuses hooks, so the step says
    so instead of replaying a program that skips it."""
    net = _net()
    compiled = tg.compile(_train_step(net, optim.SGD(net.parameters(), lr=0.5)))
    for x, y in BATCHES[:4]:
        compiled(x, y)
    net[0].weight.register_hook(lambda g: g * 0)
    with pytest.raises(CompileError, match="hooks"):
        compiled(*BATCHES[4])


def test_with_fallback_a_hooked_step_runs_eagerly_and_matches_eager() -> None:
    def hook(k: int, net: nn.Module) -> None:
        if k == 4:
            net[0].weight.register_hook(lambda g: g * 0)

    eager_net, net, eager_costs, costs = _eager_and_compiled(hook, fallback=True)
    assert _same_parameters(net, eager_net)
    assert all(np.array_equal(a, b) for a, b in zip(costs, eager_costs))


def test_a_removed_hook_lets_the_program_replay_again() -> None:
    net = _net()
    compiled = tg.compile(_train_step(net, optim.SGD(net.parameters(), lr=0.5)))
    for x, y in BATCHES[:3]:
        compiled(x, y)
    net[0].weight.register_hook(lambda g: None).remove()
    records = compiled.records
    compiled(*BATCHES[3])
    assert compiled.records == records  # an empty hook table is no hook: replayed
