"""tg.compile: a hook registered on a parameter after the step was recorded is not skipped by
the replays (eager runs it; a recording refuses hooks, so the step then says so, or, with
``fallback=True``, runs eagerly)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import nn, optim
from tinygrad_sgd.compile import CompileError

RNG = np.random.default_rng(1)
X = RNG.random((48, 6))
Y = np.eye(3)[RNG.integers(0, 3, 48)]


def _setup():
    tg.manual_seed(2)
    net = nn.Sequential(nn.Linear(6, 4), nn.Sigmoid(), nn.Linear(4, 3), nn.Sigmoid())
    opt = optim.SGD(net.parameters(), lr=0.5)

    def step(x, y):
        opt.zero_grad()
        cost = nn.F.quadratic_cost(net(x), y)
        cost.backward()
        opt.step()
        return cost

    return net, step


def test_a_hook_added_after_recording_is_not_skipped_by_a_replay() -> None:
    net, step = _setup()
    compiled = tg.compile(step)
    for k in range(0, 24, 6):
        compiled(X[k : k + 6], Y[k : k + 6])
    net[0].weight.register_hook(lambda g: g * 0)
    with pytest.raises(CompileError, match="hooks"):
        compiled(X[24:30], Y[24:30])


def test_with_fallback_the_hooked_step_runs_eagerly_and_matches_eager() -> None:
    results = []
    for compiled in (False, True):
        net, step = _setup()
        fn = tg.compile(step, fallback=True) if compiled else step
        for k in range(0, 48, 6):
            if k == 24:
                net[0].weight.register_hook(lambda g: g * 0)
            fn(X[k : k + 6], Y[k : k + 6])
        results.append([p.data.copy() for p in net.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_a_removed_hook_lets_the_program_replay_again() -> None:
    net, step = _setup()
    compiled = tg.compile(step)
    for k in range(0, 18, 6):
        compiled(X[k : k + 6], Y[k : k + 6])
    handle = net[0].weight.register_hook(lambda g: None)
    handle.remove()
    records = compiled.records
    compiled(X[18:24], Y[18:24])
    assert compiled.records == records  # an empty hook table is no hook: replayed
