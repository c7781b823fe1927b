"""A ball rolling into a valley: gradient descent, stochastic gradient descent and momentum on a
two-variable cost C(v1, v2), with every gradient found by tinygrad_sgd's reverse-mode autodiff.

Chapter 1 of the book pictures gradient descent as a ball rolling down into the valley of a
cost C(v): each step moves v by Δv = −η ∇C, which changes the cost by ΔC ≈ ∇C · Δv = −η ‖∇C‖² ≤ 0.

Here C is an average over n "training examples" x, as a network's cost is:

    C_x(v) = ½ (v1 − a_x)² + (κ/2) (v2 − b_x − ½ sin v1)²,    C(v) = (1/n) Σ_x C_x(v),

a curved valley, steep across (κ = 10) and shallow along its floor. Three walkers start on the
same hillside:

- gradient descent:  v → v − η ∇C, the full average every step;
- stochastic gradient descent: the same rule with ∇C estimated on a mini-batch of m examples,
  so the path jitters around the valley floor;
- momentum (chapter 3):  u → μ u − η ∇C,  v → v + u  (a ball with inertia, friction 1 − μ),
  which rushes along the shallow floor where plain gradient descent creeps.

All three use ``optim.SGD`` (momentum=μ for the third). The picture is written to a PNG (needs
matplotlib: ``pip install 'tinygrad-sgd[plot]'``).

Run:  python examples/gradient_descent_valley.py [--out valley.png] [--steps 60] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import optim

KAPPA = 10.0
START = (-4.0, 2.0)


def make_examples(n: int = 200, seed: int = 0) -> np.ndarray:
    """(a_x, b_x) for n examples: the valley's floor passes near (0, 0)."""
    return np.random.default_rng(seed).normal(0.0, 0.5, size=(n, 2))


def cost(v: tg.Tensor, examples: np.ndarray) -> tg.Tensor:
    """C(v) = (1/n) Σ_x [½ (v1 − a_x)² + (κ/2)(v2 − b_x − ½ sin v1)²] for the given examples."""
    a = tg.Tensor(examples[:, 0])
    b = tg.Tensor(examples[:, 1])
    v1, v2 = v[0], v[1]
    across = v2 - b - 0.5 * v1.sin()
    return (0.5 * (v1 - a) ** 2 + 0.5 * KAPPA * across**2).mean()


def roll(
    examples: np.ndarray,
    steps: int,
    lr: float,
    momentum: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The path of v under optim.SGD: (steps + 1, 2) positions, the start included."""
    v = tg.Tensor(np.array(START), requires_grad=True)
    opt = optim.SGD([v], lr=lr, momentum=momentum)
    rng = np.random.default_rng(seed)
    path = [v.data.copy()]
    for _ in range(steps):
        batch = examples
        if batch_size is not None:
            batch = examples[rng.choice(len(examples), batch_size, replace=False)]
        opt.zero_grad()
        cost(v, batch).backward()  # ∇C (or its mini-batch estimate) by backpropagation
        opt.step()  # v → v − η ∇C  (with momentum: u → μu − η∇C, v → v + u)
        path.append(v.data.copy())
    return np.array(path)


def draw(paths: dict[str, np.ndarray], examples: np.ndarray, out: str, grid: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v1s = np.linspace(-5, 2.5, grid)
    v2s = np.linspace(-2, 3, grid)
    C = np.empty((grid, grid))
    with tg.no_grad():
        for i, v2 in enumerate(v2s):
            for j, v1 in enumerate(v1s):
                C[i, j] = cost(tg.Tensor([v1, v2]), examples).item()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.contourf(v1s, v2s, np.log1p(C), levels=30, cmap="viridis", alpha=0.85)
    ax.contour(v1s, v2s, np.log1p(C), levels=15, colors="white", linewidths=0.4, alpha=0.6)
    colours = {
        "gradient descent": "tab:red",
        "SGD (m = 10)": "tab:orange",
        "momentum (μ = 0.8)": "white",
    }
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], "-o", ms=2.5, lw=1.2, color=colours[name], label=name)
    ax.plot(*START, "k*", ms=14, label="start")
    ax.set_xlabel("$v_1$")
    ax.set_ylabel("$v_2$")
    ax.set_title("A ball rolling into a valley: log(1 + C(v)) and three descents")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="valley.png", help="PNG to write (default: valley.png)")
    parser.add_argument("--steps", type=int, default=None, help="steps per walker (default 60)")
    parser.add_argument("--quick", action="store_true", help="fewer steps, a coarser picture")
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (20 if args.quick else 60)
    examples = make_examples()
    lr = 0.12  # η κ ≈ 1.2-1.5 < 2 across the valley: stable, but it zig-zags there
    paths = {
        "gradient descent": roll(examples, steps, lr),
        "SGD (m = 10)": roll(examples, steps, lr, batch_size=10, seed=1),
        "momentum (μ = 0.8)": roll(examples, steps, lr / 3, momentum=0.8),
    }
    with tg.no_grad():
        for name, path in paths.items():
            c0 = cost(tg.Tensor(path[0]), examples).item()
            c1 = cost(tg.Tensor(path[-1]), examples).item()
            print(f"{name:>20}: C {c0:8.3f} -> {c1:.4f} after {steps} steps, v = {path[-1]}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed, so no picture: pip install 'tinygrad-sgd[plot]'")
        return 0
    draw(paths, examples, args.out, grid=40 if args.quick else 120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
