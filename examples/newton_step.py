"""Newton's method beside gradient descent: one sigmoid neuron learning with the cross-entropy
cost, its gradient from ``tg.func.grad`` and its Hessian from ``tg.func.hessian``.

Chapter 3 of the book ("Other techniques for learning: Hessian technique") writes the cost near
a point v as a quadratic, C(v + Δv) ≈ C(v) + ∇C · Δv + ½ Δvᵀ H Δv, with the Hessian
H = ∂²C/∂vᵢ∂vⱼ, and minimises that quadratic instead of taking a small step downhill:

    gradient descent:  Δv = −η ∇C
    Newton's method:   Δv = −H⁻¹ ∇C      (solve H Δv = −∇C; no learning rate to choose)

The neuron: a = σ(w x + b) for one input x, parameters v = (w, b), and the cross-entropy cost
over n examples C = −(1/n) Σₓ [y ln a + (1 − y) ln(1 − a)], which is convex in (w, b), so the
Newton step heads for the one minimum, and near it the error squares at every step (quadratic
convergence) where gradient descent's shrinks by a constant factor.  The catch, as the book says:
H has n² entries for n parameters.  ``tg.func.hvp`` gives H times a vector without forming H,
which is what Newton-type methods for networks build on; the script checks one against H.

The picture (the cost's contours and both paths) needs matplotlib:
``pip install 'tinygrad-sgd[plot]'``.

Run:  python examples/newton_step.py [--out newton.png] [--steps 8] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import func

START = (3.0, 2.5)  # (w, b): a neuron that starts out too steep and shifted


def make_examples(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs x in [-3, 3] and labels y ∈ {0, 1} drawn with P(y = 1) = σ(1.5 x − 0.5): not
    separable, so the cost has a finite minimum near (w, b) = (1.5, −0.5)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, n)
    y = (rng.uniform(0.0, 1.0, n) < 1.0 / (1.0 + np.exp(-(1.5 * x - 0.5)))).astype(np.float64)
    return x, y


def cost(v: tg.Tensor, x: np.ndarray, y: np.ndarray) -> tg.Tensor:
    """C(w, b) = −(1/n) Σₓ [y ln a + (1 − y) ln(1 − a)] with a = σ(w x + b), from z = w x + b:
    ln a = −softplus(−z) and ln(1 − a) = −softplus(z), which stay finite for any z."""
    z = v[0] * x + v[1]
    return (y * (-z).softplus() + (1 - y) * z.softplus()).mean()


def gradient_descent(
    x: np.ndarray, y: np.ndarray, start: tuple[float, float], steps: int, lr: float
) -> np.ndarray:
    """v → v − η ∇C: the path, (steps + 1, 2) positions."""
    v = np.array(start)
    path = [v]
    for _ in range(steps):
        v = v - lr * func.grad(cost)(v, x, y).numpy()
        path.append(v)
    return np.array(path)


def newton(
    x: np.ndarray, y: np.ndarray, start: tuple[float, float], steps: int
) -> tuple[np.ndarray, list[float]]:
    """v → v + t Δv with H Δv = −∇C, H = func.hessian(cost): the path, (steps + 1, 2) positions,
    and the step sizes t.

    t = 1 is the pure Newton step.  Far from the minimum the quadratic model can be poor (where
    the neuron saturates, the cost flattens and H is nearly singular, so the full step flies
    off), so t is halved until the step lowers the cost ("damped" Newton); near the minimum
    t = 1 is always accepted and the convergence is quadratic."""
    v = np.array(start)
    path, ts = [v], []
    for _ in range(steps):
        g = func.grad(cost)(v, x, y).numpy()
        H = func.hessian(cost)(v, x, y).numpy()  # 2 × 2: ∂²C/∂w², ∂²C/∂w∂b, ∂²C/∂b²
        dv = np.linalg.solve(H, -g)
        with tg.no_grad():
            c = cost(tg.Tensor(v), x, y).item()
            # "lowers" up to C's rounding error: near the minimum a step changes C by less
            bound = c + 4 * np.finfo(np.float64).eps * abs(c)
            t = 1.0
            while t > 1e-6 and not cost(tg.Tensor(v + t * dv), x, y).item() <= bound:
                t /= 2
        v = v + t * dv
        path.append(v)
        ts.append(t)
    return np.array(path), ts


def draw(paths: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, out: str, grid: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = np.linspace(-3.5, 3.5, grid)
    bs = np.linspace(-3.0, 3.5, grid)
    C = np.empty((grid, grid))
    with tg.no_grad():
        for i, b in enumerate(bs):
            for j, w in enumerate(ws):
                C[i, j] = cost(tg.Tensor([w, b]), x, y).item()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.contourf(ws, bs, np.log(C), levels=30, cmap="viridis", alpha=0.85)
    ax.contour(ws, bs, np.log(C), levels=15, colors="white", linewidths=0.4, alpha=0.6)
    colours = {"gradient descent": "tab:orange", "Newton": "tab:red"}
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], "-o", ms=3, lw=1.3, color=colours[name], label=name)
    ax.plot(*paths["Newton"][0], "k*", ms=14, label="start")
    ax.set_xlim(ws[0], ws[-1])
    ax.set_ylim(bs[0], bs[-1])
    ax.set_xlabel("weight $w$")
    ax.set_ylabel("bias $b$")
    ax.set_title("Cross-entropy cost of one sigmoid neuron, log C(w, b)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="newton.png", help="PNG to write (default: newton.png)")
    parser.add_argument("--steps", type=int, default=8, help="Newton steps (default 8)")
    parser.add_argument(
        "--start", default=f"{START[0]},{START[1]}", help="w,b to start from (default %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="a coarser picture")
    args = parser.parse_args(argv)
    w0, b0 = (float(s) for s in args.start.split(","))
    x, y = make_examples()
    # η = 1: stable (η < 2/λ_max(H) ≈ 6.4 at the minimum), but along H's flat direction
    # (λ_min ≈ 0.10) the error shrinks only by a factor 1 − η λ_min ≈ 0.9 a step
    lr = 1.0
    newton_path, ts = newton(x, y, (w0, b0), args.steps)
    paths = {
        "gradient descent": gradient_descent(x, y, (w0, b0), 5 * args.steps, lr),
        "Newton": newton_path,
    }
    with tg.no_grad():
        for name, path in paths.items():
            c0 = cost(tg.Tensor(path[0]), x, y).item()
            c1 = cost(tg.Tensor(path[-1]), x, y).item()
            g1 = np.linalg.norm(func.grad(cost)(path[-1], x, y).numpy())
            print(
                f"{name:>16}: C {c0:.6f} -> {c1:.12f} after {len(path) - 1:2d} steps, "
                f"|∇C| = {g1:.1e}, (w, b) = ({path[-1][0]:.6f}, {path[-1][1]:.6f})"
            )
    norms = [np.linalg.norm(func.grad(cost)(v, x, y).numpy()) for v in newton_path]
    print("Newton's |∇C| step by step (near the minimum the exponent doubles each step):")
    print("  " + "  ".join(f"{n:.1e}" for n in norms))
    print("Newton's step sizes t (1 = the full step):  " + "  ".join(f"{t:g}" for t in ts))
    v, d = paths["Newton"][-1], np.array([1.0, -2.0])
    _, (hd,) = func.hvp(lambda v: cost(v, x, y), (v,), (d,))
    H = func.hessian(cost)(v, x, y).numpy()
    print(f"Hessian-vector product without H: hvp = {hd.numpy()}, H @ d = {H @ d}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed, so no picture: pip install 'tinygrad-sgd[plot]'")
        return 0
    draw(paths, x, y, args.out, grid=40 if args.quick else 120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
