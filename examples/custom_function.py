"""Write your own differentiable operation, check its gradient, and use it.

An operation is a ``tg.Function`` with a ``forward`` on NumPy arrays and a ``backward`` that
turns ∂C/∂(output) into ∂C/∂(input) -- the chain rule, one link of backpropagation. Here:

    log-cosh:  f(x) = ln cosh x,      f'(x) = tanh x,      f''(x) = 1 − tanh² x

a smooth cousin of |x| (quadratic near 0, linear far away) used as a robust cost. The forward
is written to be stable for large |x| (cosh overflows beyond |x| ≈ 710):

    ln cosh x = |x| + ln(1 + e^(−2|x|)) − ln 2.

The backward is written with Tensor operations (``grad_output * x.tanh()``), so the engine can
differentiate it again: ``gradgradcheck`` checks the second derivative too.

Then a deliberately wrong backward (f'(x) = tanh(x) / 2, a classic forgotten factor) shows what
``gradcheck`` reports, and finally the new operation is a cost for fitting a line with SGD.

Run: python examples/custom_function.py [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import optim


class LogCosh(tg.Function):
    """y = ln cosh x elementwise; ∂C/∂x = ∂C/∂y · tanh x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ax = np.abs(x)
        return ax + np.log1p(np.exp(-2.0 * ax)) - np.log(2.0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors  # the input, as the graph's Tensor
        return grad_output * x.tanh()


class LogCoshWrong(tg.Function):
    """The same forward with a wrong derivative: tanh(x) / 2."""

    @staticmethod
    def forward(ctx, x):
        return LogCosh.forward(ctx, x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x.tanh() * 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer steps")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n = 5 if args.quick else 20

    # 1. forward: matches NumPy's ln cosh where that does not overflow, and stays finite beyond
    x = tg.Tensor(rng.normal(0, 3, size=(n,)), requires_grad=True)
    np.testing.assert_allclose(LogCosh.apply(x).numpy(), np.log(np.cosh(x.numpy())), rtol=1e-12)
    print("ln cosh(±1000) =", LogCosh.apply(tg.Tensor([-1000.0, 1000.0])).numpy())

    # 2. gradients against central finite differences (float64), first and second order
    print("gradcheck:    ", tg.gradcheck(LogCosh.apply, [x]))
    print("gradgradcheck:", tg.gradgradcheck(LogCosh.apply, [x]))

    # 3. a wrong backward is caught, and the message says where and by how much
    try:
        tg.gradcheck(LogCoshWrong.apply, [x])
    except tg.GradcheckError as e:
        print("the wrong backward is caught:\n   ", str(e).replace("\n", "\n    "))
    else:
        print("error: gradcheck missed the wrong backward", file=sys.stderr)
        return 1

    # 4. use it: fit y = w x + b to data with outliers, cost C = (1/n) Σ ln cosh(w x + b − y)
    m = 50 if args.quick else 200
    xs = rng.uniform(-2, 2, m)
    ys = 1.5 * xs - 0.5 + rng.normal(0, 0.1, m)
    ys[rng.choice(m, m // 10, replace=False)] += 8.0  # 10% gross outliers
    w = tg.Tensor(0.0, requires_grad=True)
    b = tg.Tensor(0.0, requires_grad=True)
    opt = optim.SGD([w, b], lr=0.5, momentum=0.9)
    for _ in range(100 if args.quick else 300):
        opt.zero_grad()
        C = LogCosh.apply(w * tg.Tensor(xs) + b - tg.Tensor(ys)).mean()
        C.backward()
        opt.step()
    lsq_w, lsq_b = np.polyfit(xs, ys, 1)
    print(f"log-cosh fit: w = {w.item():.3f}, b = {b.item():.3f}   (true 1.5, -0.5)")
    print(f"least squares: w = {lsq_w:.3f}, b = {lsq_b:.3f}   (pulled by the outliers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
