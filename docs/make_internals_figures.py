"""Make the figures and the numbers of docs/internals.md from one training step of a [2, 3, 1]
sigmoid network with the quadratic cost, exactly as the guide describes it.

    python docs/make_internals_figures.py           # rewrite the figures and the numbers
    python docs/make_internals_figures.py --check   # verify they are current (no writing)

What it writes (all under docs/):

* ``internals_forward.dot`` / ``.svg`` -- the graph of the forward pass, drawn by
  ``tinygrad_sgd.viz.render``;
* ``internals_backward.dot`` / ``.svg`` -- the same graph after ``backward``, with ‖∂C/∂t‖ on
  every tensor;
* the blocks of internals.md between ``<!-- BEGIN generated:NAME -->`` and
  ``<!-- END generated:NAME -->``: the forward values, the text tree, the tracer's output, the
  comparison of every gradient with the book's equations BP1-BP4, the SGD step, and what the
  transforms of ``tinygrad_sgd.func`` compute on the same network.

``--check`` recomputes everything and fails (exit status 1, naming what differs) when a
committed DOT file or a generated block is out of date, when an SVG is missing a node of its
DOT, or when any engine gradient differs from BP1-BP4 by more than 1e-12.
"""

from __future__ import annotations

import argparse
import html
import io
import os
import re
import sys
from pathlib import Path

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, func, viz

DOCS = Path(__file__).resolve().parent
GUIDE = DOCS / "internals.md"
ETA = 3.0  # the book's learning rate for its MNIST network
TOLERANCE = 1e-12  # engine vs. BP1-BP4: the same float64 products, so they agree to rounding


def sigma(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigma_prime(z: np.ndarray) -> np.ndarray:
    return sigma(z) * (1.0 - sigma(z))


def fmt(a: np.ndarray) -> str:
    """A column vector or matrix as rows of 6-significant-digit numbers, for the guide."""
    a = np.atleast_2d(a)
    rows = ["[" + ", ".join(f"{v: .6f}" for v in row) + "]" for row in a]
    return "[" + ", ".join(rows) + "]" if len(rows) > 1 else rows[0]


def build() -> dict[str, Tensor]:
    """The network and one example, in the book's notation: layer 1 is the input, and
    z^l = w^l a^(l-1) + b^l, a^l = σ(z^l) for l = 2, 3; C = ½‖y − a^3‖²."""
    rng = np.random.default_rng(2)
    t: dict[str, Tensor] = {
        # the book's initialisation: weights and biases drawn from N(0, 1)
        "w2": Tensor(rng.standard_normal((3, 2)), requires_grad=True),
        "b2": Tensor(rng.standard_normal((3, 1)), requires_grad=True),
        "w3": Tensor(rng.standard_normal((1, 3)), requires_grad=True),
        "b3": Tensor(rng.standard_normal((1, 1)), requires_grad=True),
        "x": Tensor([[0.8], [0.3]]),  # a^1 = x, a column vector
        "y": Tensor([[1.0]]),  # the desired output
    }
    t["z2"] = t["w2"] @ t["x"] + t["b2"]
    t["a2"] = t["z2"].sigmoid()
    t["z3"] = t["w3"] @ t["a2"] + t["b3"]
    t["a3"] = t["z3"].sigmoid()
    t["C"] = 0.5 * ((t["y"] - t["a3"]) ** 2).sum()
    return t


NAMES = ("w2", "b2", "w3", "b3", "x", "y")


def compute() -> dict[str, object]:
    """Run the step and gather everything the guide shows."""
    t = build()
    params = {k: t[k] for k in NAMES}
    out: dict[str, object] = {}
    out["forward_dot"] = viz.to_dot(t["C"], params=params)
    out["tree"] = viz.to_text(t["C"], params=params)

    viz.retain_grads(t["C"])  # keep ∂C/∂t on every intermediate tensor, for the picture
    log = io.StringIO()
    with tg.trace(file=log) as tr:
        t["C"].backward(retain_graph=True)
    out["trace"] = log.getvalue()
    out["trace_ops"] = [s.op for s in tr.steps]
    out["backward_dot"] = viz.to_dot(t["C"], show_grad=True, params=params)

    # The book's four equations, by hand with NumPy.
    x, y = t["x"].numpy(), t["y"].numpy()
    w2, b2, w3, b3 = (t[k].numpy() for k in ("w2", "b2", "w3", "b3"))
    z2 = w2 @ x + b2
    a2 = sigma(z2)
    z3 = w3 @ a2 + b3
    a3 = sigma(z3)
    delta3 = (a3 - y) * sigma_prime(z3)  # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
    delta2 = (w3.T @ delta3) * sigma_prime(z2)  # BP2: δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ σ'(z^l)
    book = {
        "δ3 = ∂C/∂z3": ("BP1", delta3, t["z3"].grad),
        "δ2 = ∂C/∂z2": ("BP2", delta2, t["z2"].grad),
        "∂C/∂b3": ("BP3", delta3, t["b3"].grad),
        "∂C/∂b2": ("BP3", delta2, t["b2"].grad),
        "∂C/∂w3": ("BP4", delta3 @ a2.T, t["w3"].grad),
        "∂C/∂w2": ("BP4", delta2 @ x.T, t["w2"].grad),
    }
    rows = []
    worst = 0.0
    for name, (eq, by_hand, engine) in book.items():
        assert engine is not None, name
        diff = float(np.max(np.abs(engine.numpy() - by_hand)))
        worst = max(worst, diff)
        rows.append((name, eq, fmt(engine.numpy()), fmt(by_hand), diff))
    out["bp_rows"] = rows
    out["bp_worst"] = worst
    out["forward_values"] = [
        ("z2 = w2 a1 + b2", fmt(z2)),
        ("a2 = σ(z2)", fmt(a2)),
        ("z3 = w3 a2 + b3", fmt(z3)),
        ("a3 = σ(z3)", fmt(a3)),
        ("C = ½‖y − a3‖²", f"{t['C'].item():.6f}"),
    ]

    # One step of gradient descent, w -> w − η ∂C/∂w (what optim.SGD does), and the new cost.
    before = t["C"].item()
    with tg.no_grad():
        for k in ("w2", "b2", "w3", "b3"):
            p = t[k]
            assert p.grad is not None
            # A new array rather than `-=`: the graph drawn above was kept (retain_graph=True),
            # and arrays a live graph saved for backward are read-only (README, "Reliability").
            p.data = p.data - ETA * p.grad.data
        a2n = sigma(t["w2"].numpy() @ x + t["b2"].numpy())
        a3n = sigma(t["w3"].numpy() @ a2n + t["b3"].numpy())
    after = float(0.5 * np.sum((y - a3n) ** 2))
    out["step"] = (before, after)
    out.update(transforms())
    return out


def cost_of(w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """C as a function of the parameters (and the example): build()'s formulas."""
    a2 = (w2 @ x + b2).sigmoid()
    a3 = (w3 @ a2 + b3).sigmoid()
    return 0.5 * ((y - a3) ** 2).sum()


def transforms() -> dict[str, object]:
    """func.grad, jvp, hvp and hessian on the network, at the parameters before the step."""
    t = build()
    t["C"].backward()
    params = [t[k].numpy() for k in NAMES[:4]]
    x, y = t["x"], t["y"]
    grads = func.grad(cost_of, argnums=(0, 1, 2, 3))(*params, x, y)
    engine = [t[k].grad for k in NAMES[:4]]  # C.backward() above: the .grad of section 4
    grad_diff = max(float(np.max(np.abs(g.numpy() - e.numpy()))) for g, e in zip(grads, engine))  # type: ignore[union-attr]
    step = [-ETA * g.numpy() for g in grads]  # Δv = −η ∇C
    C = lambda w2, b2, w3, b3: cost_of(w2, b2, w3, b3, x, y)  # noqa: E731
    c, slope = func.jvp(C, params, step)  # ∇C · Δv
    _, h_step = func.hvp(C, params, step)  # H Δv
    curvature = sum(float(np.sum(d * h.numpy())) for d, h in zip(step, h_step))  # Δvᵀ H Δv
    by_hand = -ETA * sum(float(np.sum(g.numpy() ** 2)) for g in grads)  # −η ‖∇C‖²
    h3 = func.hessian(cost_of, argnums=2)(*params, x, y).numpy().reshape(3, 3)
    return {
        "func_grad_w3": fmt(grads[2].numpy()),
        "func_grad_diff": grad_diff,
        "slope": (slope.item(), by_hand),
        "curvature": curvature,
        "predicted": (c.item() + slope.item(), c.item() + slope.item() + curvature / 2),
        "hessian_w3": fmt(h3),
        "hessian_asymmetry": float(np.max(np.abs(h3 - h3.T))),
    }


# ------------------------------------------------------------------------------ the guide's blocks


def blocks(r: dict[str, object]) -> dict[str, str]:
    fwd = "\n".join(f"| {name} | `{value}` |" for name, value in r["forward_values"])  # type: ignore[attr-defined]
    bp = "\n".join(
        f"| {name} | {eq} | `{eng}` | `{hand}` | {'< 1e-12' if diff <= TOLERANCE else 'TOO BIG'} |"
        for name, eq, eng, hand, diff in r["bp_rows"]  # type: ignore[attr-defined]
    )
    before, after = r["step"]  # type: ignore[misc]
    return {
        "forward": "| quantity | value |\n|---|---|\n" + fwd,
        "tree": "```text\n" + str(r["tree"]) + "```",
        "trace": "```text\n" + str(r["trace"]) + "```",
        "bp": (
            "| gradient | book | engine | by hand (NumPy) | largest difference |\n"
            "|---|---|---|---|---|\n" + bp
        ),
        "step": (
            f"With η = {ETA:g}: C = {before:.6f} before the step and C = {after:.6f} after it."
        ),
        "transforms": transforms_table(r),
    }


def transforms_table(r: dict[str, object]) -> str:
    def small(v: object) -> str:
        return "< 1e-15" if float(v) < 1e-15 else "TOO BIG"  # type: ignore[arg-type]

    slope, by_hand = r["slope"]  # type: ignore[misc]
    first, second = r["predicted"]  # type: ignore[misc]
    rows = [
        ("∂C/∂w3", "`func.grad(cost, argnums=(0, 1, 2, 3))`", f"`{r['func_grad_w3']}`",
         f"the `.grad` of section 4, difference {small(r['func_grad_diff'])}"),
        ("∇C · Δv for the step Δv = −η ∇C", "`func.jvp(cost, params, step)`", f"`{slope:.6f}`",
         f"−η ‖∇C‖² = `{by_hand:.6f}` by hand"),
        ("Δvᵀ H Δv", "`func.hvp(cost, params, step)`", f"`{r['curvature']:.6f}`",
         "H itself is never formed"),
        ("C after the step, to first order", "C + ∇C · Δv", f"`{first:.6f}`",
         f"actual: `{r['step'][1]:.6f}`"),  # type: ignore[index]
        ("C after the step, to second order", "C + ∇C · Δv + ½ Δvᵀ H Δv", f"`{second:.6f}`",
         f"actual: `{r['step'][1]:.6f}`"),  # type: ignore[index]
        ("∂²C/∂w3²", "`func.hessian(cost, argnums=2)`", f"`{r['hessian_w3']}`",
         f"symmetric: H − Hᵀ {small(r['hessian_asymmetry'])}"),
    ]  # fmt: skip
    return "| quantity | computed with | value | check |\n|---|---|---|---|\n" + "\n".join(
        "| " + " | ".join(row) + " |" for row in rows
    )


BLOCK_RE = re.compile(
    r"(<!-- BEGIN generated:(?P<name>\w+) -->\n)(?P<body>.*?)(\n<!-- END generated:(?P=name) -->)",
    re.S,
)


def updated_guide(text: str, new: dict[str, str]) -> str:
    found = set()

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        found.add(name)
        return m.group(1) + new[name] + m.group(4)

    result = BLOCK_RE.sub(sub, text)
    missing = set(new) - found
    if missing:
        raise SystemExit(f"{GUIDE.name}: no generated block(s) {sorted(missing)}")
    return result


def svg_covers(svg: str, dot: str) -> list[str]:
    """Node label lines of ``dot`` that are missing from ``svg`` (empty when the SVG matches)."""
    missing = []
    shown = html.unescape(svg)  # Graphviz writes e.g. "-" as "&#45;"
    for label in re.findall(r'^  n\d+ \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M):
        for line in label.split("\\n"):
            if line.replace('\\"', '"').replace("\\\\", "\\") not in shown:
                missing.append(line)
    return missing


def write(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


def check() -> list[str]:
    """What is out of date (empty list: everything is current)."""
    r = compute()
    problems = []
    if float(r["bp_worst"]) > TOLERANCE:  # type: ignore[arg-type]
        problems.append(f"engine gradients differ from BP1-BP4 by {r['bp_worst']:.3g}")
    for stem in ("forward", "backward"):
        dot = str(r[f"{stem}_dot"])
        dot_path = DOCS / f"internals_{stem}.dot"
        svg_path = DOCS / f"internals_{stem}.svg"
        if not dot_path.exists() or dot_path.read_text(encoding="utf-8") != dot:
            problems.append(f"{dot_path.name} is out of date")
        if not svg_path.exists():
            problems.append(f"{svg_path.name} is missing")
        else:
            lost = svg_covers(svg_path.read_text(encoding="utf-8"), dot)
            if lost:
                problems.append(f"{svg_path.name} lacks node text {lost[:3]}")
    text = GUIDE.read_text(encoding="utf-8")
    if updated_guide(text, blocks(r)) != text:
        problems.append(f"generated blocks of {GUIDE.name} are out of date")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(f"out of date: {p}", file=sys.stderr)
        if problems:
            print("run: python docs/make_internals_figures.py", file=sys.stderr)
            return 1
        print("docs/internals.md and its figures are current")
        return 0
    r = compute()
    if float(r["bp_worst"]) > TOLERANCE:  # type: ignore[arg-type]
        raise SystemExit(f"engine gradients differ from BP1-BP4 by {r['bp_worst']:.3g}")
    t = build()
    params = {k: t[k] for k in NAMES}
    write(DOCS / "internals_forward.dot", str(r["forward_dot"]))
    viz.render(t["C"], DOCS / "internals_forward.svg", params=params)
    viz.retain_grads(t["C"])
    t["C"].backward(retain_graph=True)
    write(DOCS / "internals_backward.dot", str(r["backward_dot"]))
    assert viz.to_dot(t["C"], show_grad=True, params=params) == r["backward_dot"]
    viz.render(t["C"], DOCS / "internals_backward.svg", show_grad=True, params=params)
    write(GUIDE, updated_guide(GUIDE.read_text(encoding="utf-8"), blocks(r)))
    print("wrote docs/internals_{forward,backward}.{dot,svg} and the numbers in docs/internals.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
