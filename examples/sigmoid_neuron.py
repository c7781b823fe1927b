"""One sigmoid neuron a = σ(w·x + b) and its quadratic cost, backpropagated by the engine and
checked against the book's formulas ∂C/∂b = (a − y) σ'(z), ∂C/∂w = (a − y) σ'(z) x.

Run: python examples/sigmoid_neuron.py
"""

import numpy as np

import tinygrad_sgd as tg


def main() -> None:
    x = tg.Tensor([1.0, 2.0])
    y = 1.0
    w = tg.Tensor([0.6, -0.4], requires_grad=True)
    b = tg.Tensor(0.1, requires_grad=True)

    z = w @ x + b
    a = z.sigmoid()
    cost = 0.5 * (y - a) ** 2
    cost.backward()

    delta = (a.item() - y) * a.item() * (1 - a.item())
    print(f"a = {a.item():.6f}, C = {cost.item():.6f}")
    print(f"dC/dw = {w.grad.numpy()}  (book: {delta * x.numpy()})")
    print(f"dC/db = {b.grad.item():.6f}  (book: {delta:.6f})")
    assert np.allclose(w.grad.numpy(), delta * x.numpy())
    assert np.allclose(b.grad.numpy(), delta)


if __name__ == "__main__":
    main()
