"""Learning-rate schedules, compatible with ``torch.optim.lr_scheduler``.

A schedule changes ``group["lr"]`` of an optimizer once per :meth:`LRScheduler.step` (usually once
per epoch, after that epoch's optimizer steps)::

    opt = optim.SGD(net.parameters(), lr=3.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(30):
        train_one_epoch(net, opt)       # many opt.step()
        sched.step()                    # η ← η/2 after epochs 10 and 20

The semantics are PyTorch's: building a schedule records ``group["initial_lr"]`` (the base rate
η₀), sets ``last_epoch = 0`` and leaves the rate as it is; each ``step()`` increments
``last_epoch`` t and computes the new rate *from the current one* (the "chainable" form, so
changes made to ``group["lr"]`` by hand are respected).  ``get_last_lr()`` gives the rates last
set.  Building with ``last_epoch=t ≥ 0`` resumes a run and needs ``initial_lr`` in every group
(it is there when the optimizer's state_dict was loaded).  ``state_dict()`` holds everything but
the optimizer.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..autograd.mode import note_call
from .optimizer import Optimizer

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "MultiStepLR", "StepLR"]


class LRScheduler:
    """Base class.  Subclasses implement :meth:`get_lr` (the chainable rule) and may implement
    a ``closed_form_lr()`` method (the rate as a function of t and η₀ only)."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}"
            )
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(
                f"{type(self).__name__}: last_epoch must be an int >= -1, got {last_epoch!r}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', which is "
                        f"needed to resume with last_epoch={last_epoch}; load the optimizer's "
                        "state_dict from the checkpoint first (or use last_epoch=-1 for a new run)"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._initial = True
        self.step()
        self._initial = False

    def get_lr(self) -> list[float]:
        """The rates for the new ``last_epoch``, from the current ``group["lr"]`` values."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance t = ``last_epoch`` by one (or set it to ``epoch``, using the closed form if
        the schedule has one) and write the new rates into the optimizer."""
        # Inside a step compiled by tg.compile: recorded, so that it runs again at every replay.
        if epoch is None:
            note_call(self.step)
        else:
            note_call(self.step, epoch)
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            closed = getattr(self, "closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last :meth:`step` (one per parameter group)."""
        return list(self._last_lr)

    def _current(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything the schedule knows, except the optimizer (``tg.save`` can write it)."""
        out = {k: v for k, v in self.__dict__.items() if k != "optimizer"}
        for k, v in out.items():
            if isinstance(v, Counter):  # MultiStepLR's milestones: keep a plain, saveable dict
                out[k] = {int(m): int(c) for m, c in v.items()}
            elif isinstance(v, list):
                out[k] = list(v)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{type(self).__name__}.load_state_dict: expected a dict, got "
                f"{type(state_dict).__name__}"
            )
        unknown = set(state_dict) - set(self.__dict__)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unexpected key(s) {sorted(unknown)}"
            )
        for k, v in state_dict.items():
            if isinstance(self.__dict__.get(k), Counter):
                v = Counter({int(m): int(c) for m, c in dict(v).items()})
            elif isinstance(v, (list, tuple)):
                v = list(v)
            self.__dict__[k] = v


def _positive_int(value: Any, name: str, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls}: {name} must be a positive int, got {value!r}")
    return value


def _number(value: Any, name: str, cls: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{cls}: {name} must be a number, got {type(value).__name__}")
    return float(value)


class StepLR(LRScheduler):
    """η_t = η₀ · γ^⌊t / step_size⌋: multiply the rate by γ every ``step_size`` epochs."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = _number(gamma, "gamma", "StepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if self._initial or t == 0 or t % self.step_size != 0:
            return self._current()
        return [lr * self.gamma for lr in self._current()]

    def closed_form_lr(self) -> list[float]:
        """η_t = η₀ · γ^⌊t / step_size⌋ for each group, from t alone."""
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """η_t = η₀ · γ^(number of milestones ≤ t): multiply by γ at each milestone epoch."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        ms = list(milestones)
        for m in ms:
            if isinstance(m, bool) or not isinstance(m, int):
                raise TypeError(f"MultiStepLR: milestones must be ints, got {m!r}")
        self.milestones: Counter[int] = Counter(ms)
        self.gamma = _number(gamma, "gamma", "MultiStepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if self._initial or t not in self.milestones:
            return self._current()
        return [lr * self.gamma ** self.milestones[t] for lr in self._current()]

    def closed_form_lr(self) -> list[float]:
        """η_t = η₀ · γ^(number of milestones ≤ t) for each group, from t alone."""
        ms = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(ms, self.last_epoch) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """η_t = η₀ · γ^t: multiply the rate by γ every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _number(gamma, "gamma", "ExponentialLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._initial:
            return self._current()
        return [lr * self.gamma for lr in self._current()]

    def closed_form_lr(self) -> list[float]:
        """η_t = η₀ · γ^t for each group, from t alone."""
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """η_t = η_min + ½ (η₀ − η_min)(1 + cos(π t / T_max))  (SGDR without restarts).

    As in PyTorch the rate is updated recursively from the current one,

        η_t = η_min + (η_{t−1} − η_min) · (1 + cos(π t/T)) / (1 + cos(π (t−1)/T)),

    which equals the closed form above when nothing else changes the rate; past T_max it rises
    again (period 2 T_max), the step out of the minimum using
    η_t = η_{t−1} + ½ (η₀ − η_min)(1 − cos(π/T)) to avoid dividing by 1 + cos(π) = 0.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = _positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = _number(eta_min, "eta_min", "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return self._current()
        if self._step_count == 1 and t > 0:
            return [lo + (b - lo) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                for lr, b in zip(self._current(), self.base_lrs)
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - lo) + lo for lr in self._current()]

    def closed_form_lr(self) -> list[float]:
        """η_t = η_min + ½ (η₀ − η_min)(1 + cos(π t / T_max)) for each group, from t alone."""
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        return [lo + (b - lo) * (1 + math.cos(math.pi * t / T)) / 2 for b in self.base_lrs]
