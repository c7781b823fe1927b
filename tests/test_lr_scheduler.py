"""optim.lr_scheduler against the closed-form schedules, PyTorch's conventions (initial_lr,
last_epoch, get_last_lr, chainable updates, resuming) and, when installed, torch itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, optim
from tinygrad_sgd.optim import lr_scheduler as S


def make_opt(lrs: tuple[float, ...] = (0.1,)) -> optim.SGD:
    groups = [{"params": [Tensor([1.0], requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0])


def run(sched: S.LRScheduler, n: int) -> list[list[float]]:
    """The rates in force during epochs 0..n−1 (read before each epoch's scheduler step)."""
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in sched.optimizer.param_groups])
        sched.optimizer.step()
        sched.step()
    return out


def test_construction_records_initial_lr_and_keeps_the_rate() -> None:
    opt = make_opt((0.1, 0.02))
    sched = S.StepLR(opt, step_size=3)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert sched.last_epoch == 0 and sched.base_lrs == [0.1, 0.02]
    assert sched.get_last_lr() == [0.1, 0.02]


def test_step_lr_closed_form() -> None:
    sched = S.StepLR(make_opt((0.1, 1.0)), step_size=3, gamma=0.5)
    got = run(sched, 10)
    for t, lrs in enumerate(got):
        assert lrs == pytest.approx([0.1 * 0.5 ** (t // 3), 1.0 * 0.5 ** (t // 3)], rel=1e-15)
    assert sched.last_epoch == 10
    assert sched.get_last_lr() == pytest.approx([0.1 * 0.5**3, 0.5**3])


def test_multistep_and_exponential() -> None:
    ms = S.MultiStepLR(make_opt(), milestones=[2, 5, 5], gamma=0.1)
    expected = [0.1, 0.1, 0.01, 0.01, 0.01, 1e-4, 1e-4]
    assert [lrs[0] for lrs in run(ms, 7)] == pytest.approx(expected, rel=1e-12)
    ex = S.ExponentialLR(make_opt(), gamma=0.9)
    assert [lrs[0] for lrs in run(ex, 6)] == pytest.approx(
        [0.1 * 0.9**t for t in range(6)], rel=1e-14
    )


def test_cosine_annealing_closed_form_and_beyond_t_max() -> None:
    lr0, lo, T = 0.5, 0.01, 6
    sched = S.CosineAnnealingLR(make_opt((lr0,)), T_max=T, eta_min=lo)
    got = [lrs[0] for lrs in run(sched, 3 * T + 2)]
    expected = [lo + (lr0 - lo) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(3 * T + 2)]
    # the recursive update accumulates a few rounding errors per step
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got[T] == pytest.approx(lo) and got[2 * T] == pytest.approx(lr0)


def test_chainable_respects_manual_changes() -> None:
    opt = make_opt()
    sched = S.StepLR(opt, step_size=2, gamma=0.5)
    sched.step()
    opt.param_groups[0]["lr"] = 1.0  # the user changes the rate by hand
    sched.step()  # epoch 2: multiply what is there
    assert opt.param_groups[0]["lr"] == 0.5
    # the deprecated explicit epoch uses the closed form from initial_lr
    sched.step(4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)


def test_resume_with_last_epoch_and_state_dict(tmp_path) -> None:
    opt = make_opt()
    sched = S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    run(sched, 4)
    ckpt = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    tg.save(ckpt, tmp_path / "c.npz")
    saved_lr = sched.get_last_lr()
    uninterrupted = [lrs[0] for lrs in run(sched, 5)]

    back = tg.load(tmp_path / "c.npz")
    opt2 = make_opt((7.0,))
    opt2.load_state_dict(back["optimizer"])
    sched2 = S.CosineAnnealingLR(opt2, T_max=10, eta_min=0.001, last_epoch=3)
    sched2.load_state_dict(back["scheduler"])
    assert sched2.last_epoch == 4 and sched2.get_last_lr() == saved_lr
    assert opt2.param_groups[0]["lr"] == saved_lr[0]
    resumed = [lrs[0] for lrs in run(sched2, 5)]
    assert resumed == uninterrupted


def test_resume_without_initial_lr_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="has no 'initial_lr'"):
        S.StepLR(make_opt(), step_size=2, last_epoch=3)


def test_validation() -> None:
    with pytest.raises(TypeError, match="expected an Optimizer"):
        S.StepLR(object(), step_size=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        S.StepLR(make_opt(), step_size=0)
    with pytest.raises(ValueError, match="T_max must be a positive int"):
        S.CosineAnnealingLR(make_opt(), T_max=0)
    with pytest.raises(TypeError, match="milestones must be ints"):
        S.MultiStepLR(make_opt(), milestones=[1.5])
    with pytest.raises(ValueError, match="unexpected key"):
        S.StepLR(make_opt(), step_size=2).load_state_dict({"bogus": 1})


@pytest.mark.parametrize("kind", ["step", "multistep", "exponential", "cosine"])
def test_matches_torch_oracle(kind: str) -> None:
    torch = pytest.importorskip("torch")  # optional oracle; the closed forms above are the test
    import warnings

    def build(mod, opt):
        return {
            "step": lambda: mod.StepLR(opt, step_size=3, gamma=0.3),
            "multistep": lambda: mod.MultiStepLR(opt, milestones=[2, 7], gamma=0.5),
            "exponential": lambda: mod.ExponentialLR(opt, gamma=0.8),
            "cosine": lambda: mod.CosineAnnealingLR(opt, T_max=5, eta_min=0.01),
        }[kind]()

    ours = build(S, make_opt((0.4,)))
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    theirs = build(torch.optim.lr_scheduler, topt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(17):
            ours.optimizer.step()
            topt.step()
            ours.step()
            theirs.step()
            assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15, abs=0)
            assert ours.last_epoch == theirs.last_epoch


def test_multistep_state_survives_save_and_load(tmp_path) -> None:
    sched = S.MultiStepLR(make_opt(), milestones=[3, 3, 6], gamma=0.5)
    run(sched, 2)
    tg.save(sched.state_dict(), tmp_path / "s.npz")
    fresh = S.MultiStepLR(make_opt(), milestones=[100])
    fresh.load_state_dict(tg.load(tmp_path / "s.npz"))
    assert fresh.milestones == sched.milestones and fresh.last_epoch == 2
    fresh.optimizer.param_groups[0]["lr"] = sched.optimizer.param_groups[0]["lr"]
    assert [lrs[0] for lrs in run(fresh, 6)] == [lrs[0] for lrs in run(sched, 6)]
    assert fresh.get_last_lr() == pytest.approx([0.1 * 0.5**3])
