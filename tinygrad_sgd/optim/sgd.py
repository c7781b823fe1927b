"""Stochastic gradient descent, the book's learning rule, with PyTorch's options.

With the defaults one step is exactly the book's rule (chapter 1)

    w → w − η ∂C/∂w,   b → b − η ∂C/∂b,

where C is the cost averaged over the mini-batch of m examples, so ∂C/∂w = (1/m) Σ_x ∂C_x/∂w.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd.mode import note_call
from .optimizer import Optimizer, required

__all__ = ["SGD"]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"SGD: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"SGD: {name} must be finite, got {v}")
    return v


class SGD(Optimizer):
    """SGD with momentum, dampening, Nesterov momentum and weight decay (PyTorch's semantics).

    For each parameter p with a gradient g = ``p.grad`` (parameters whose ``.grad`` is None are
    skipped), with μ = momentum, τ = dampening, λ = weight_decay, η = lr::

        d ← g + λ p                       (weight decay; also with μ = 0)
        if μ ≠ 0:
            v ← d                  at the first step (no dampening then)
            v ← μ v + (1 − τ) d    afterwards
            d ← d + μ v  if nesterov, else  d ← v
        p ← p − η d

    ``maximize=True`` uses −g instead of g.  ``p.grad`` is never modified and ``p`` keeps its
    identity (its ``.data`` array is updated in place, outside the graph).  The momentum buffer v
    is ``state[p]["momentum_buffer"]``.

    The book's L2-regularised rule (chapter 3),

        w → (1 − ηλ/n) w − (η/m) Σ_x ∂C₀_x/∂w,

    is ``weight_decay = λ/n`` (n: training-set size) applied to the weights only, e.g.
    ``SGD([{"params": weights, "weight_decay": lmbda / n}, {"params": biases}], lr=eta)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = required,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        if lr is not required:
            self._check_group(defaults)
        super().__init__(params, defaults)
        self._scratch: dict[tuple[Any, ...], np.ndarray] = {}  # see step

    def _check_group(self, group: dict[str, Any]) -> None:
        lr = _number(group["lr"], "lr")
        momentum = _number(group["momentum"], "momentum")
        dampening = _number(group["dampening"], "dampening")
        weight_decay = _number(group["weight_decay"], "weight_decay")
        if lr < 0:
            raise ValueError(f"SGD: invalid learning rate lr={lr} (must be >= 0)")
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum {momentum} (must be >= 0)")
        if weight_decay < 0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay} (must be >= 0)")
        for flag in ("nesterov", "maximize"):
            if not isinstance(group[flag], (bool, np.bool_)):
                raise TypeError(f"SGD: {flag} must be a bool, got {type(group[flag]).__name__}")
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires momentum > 0 and dampening = 0 "
                f"(got momentum={momentum}, dampening={dampening})"
            )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, once; return ``closure()`` if given."""
        # NOTE: no Tensor operations here (the arrays are updated directly), so no no_grad()
        # around it: the decorator cost 1.5 µs of a 13 µs step for the book's four parameters.
        if closure is None:
            note_call(self.step)  # recorded by tg.compile: runs, reading lr etc., at every replay
        loss = None if closure is None else self._closure_loss(closure)
        scratch = self._scratch
        for group in self.param_groups:
            lr = group["lr"]
            momentum = group["momentum"]
            dampening = group["dampening"]
            nesterov = group["nesterov"]
            weight_decay = group["weight_decay"]
            maximize = group["maximize"]
            plain = not (maximize or weight_decay or momentum)  # the book's rule: p ← p − η g
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                d = grad.data  # read only: every step below allocates or writes elsewhere
                data = p.data
                if d.shape != data.shape:
                    raise RuntimeError(
                        f"SGD: a parameter of shape {p.shape} has a gradient of shape {d.shape}"
                    )
                if not plain:
                    d = self._direction(p, d, momentum, dampening, nesterov, weight_decay, maximize)
                if data.flags.writeable:
                    # η d into a buffer kept between steps, then subtracted in place.  NOTE: a new
                    # temporary of the parameter's size each step made the allocator return and
                    # re-fault its pages (measured: 784×30 float64 weights, m = 1000).
                    key = (data.shape, data.dtype)
                    step = scratch.get(key)
                    if step is None:
                        step = scratch[key] = np.empty_like(data)
                    np.multiply(d, lr, out=step, casting="same_kind")
                    data -= step
                else:  # saved by a live graph (retain_graph=True): see Tensor._overwrite
                    p._overwrite(data - lr * d)
        return loss

    def _direction(
        self,
        p: Any,
        d: np.ndarray,
        momentum: float,
        dampening: float,
        nesterov: bool,
        weight_decay: float,
        maximize: bool,
    ) -> np.ndarray:
        """d in p ← p − η d: the gradient with weight decay and momentum applied."""
        if maximize:
            d = -d
        if weight_decay != 0:
            d = d + weight_decay * p.data
        if momentum != 0:
            state = self.state.setdefault(p, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(d, dtype=p.dtype, copy=True)
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        return d
