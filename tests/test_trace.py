"""``tg.trace()``: each backward step, in the order the engine runs it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


def _neuron():
    """The README's neuron: z = w·x + b, a = σ(z), C = ½(y − a)² with y = 1."""
    x = Tensor([1.0, 2.0])
    w = Tensor([0.6, -0.4], requires_grad=True)
    b = Tensor(0.1, requires_grad=True)
    a = (w @ x + b).sigmoid()
    return w, b, a, 0.5 * (1.0 - a) ** 2


def test_neuron_backward_steps_in_order_with_hand_computed_norms():
    w, b, a, cost = _neuron()
    with tg.trace(file=None) as tr:
        cost.backward()
    assert [s.op for s in tr.steps] == ["Mul", "PowScalar", "Sub", "Sigmoid", "Add", "MatMul"]
    assert [s.index for s in tr.steps] == list(range(6))
    z = 0.6 - 0.8 + 0.1
    av = 1.0 / (1.0 + np.exp(-z))
    delta = (av - 1.0) * av * (1.0 - av)
    by_op = {s.op: s for s in tr.steps}
    assert by_op["Mul"].grad_norm == pytest.approx(1.0)  # ∂C/∂C
    assert by_op["Sigmoid"].grad_norm == pytest.approx(abs(av - 1.0))  # ∂C/∂a = a − y
    assert by_op["Add"].grad_norm == pytest.approx(abs(delta))  # δ = ∂C/∂z
    mm = by_op["MatMul"]
    assert mm.output_shape == ()
    assert mm.input_shapes == [(2,), (2,)]
    # ∂C/∂w = δ x is passed to w; x does not require grad, so it gets nothing.
    assert mm.input_grad_norms[0] == pytest.approx(abs(delta) * np.sqrt(5.0))
    assert mm.input_grad_norms[1] is None
    add = by_op["Add"]
    assert add.input_grad_norms == [pytest.approx(abs(delta)), pytest.approx(abs(delta))]


def test_trace_prints_each_step_to_file():
    _, _, _, cost = _neuron()
    out = io.StringIO()
    with tg.trace(file=out) as tr:
        cost.backward()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(tr) == 6
    assert lines[0].startswith("step 0: Mul")
    assert lines[-1].startswith("step 5: MatMul")
    assert lines[0].endswith("|g|=0.5]")  # ∂C/∂u = 0.5 for C = 0.5·u; the constant gets none
    assert [str(s) for s in tr] == lines


def test_trace_prints_to_stdout_by_default(capsys):
    _, _, _, cost = _neuron()
    with tg.trace():
        cost.backward()
    assert capsys.readouterr().out.splitlines()[3].startswith("step 3: Sigmoid")


def test_trace_records_only_inside_the_context():
    _, _, _, c1 = _neuron()
    _, _, _, c2 = _neuron()
    tr = tg.trace(file=None)
    with tr:
        c1.backward()
    c2.backward()
    assert len(tr) == 6


def test_nested_traces_both_record():
    _, _, _, cost = _neuron()
    with tg.trace(file=None) as outer, tg.trace(file=None) as inner:
        cost.backward()
    assert [s.op for s in outer] == [s.op for s in inner]
    assert len(outer) == 6


def _node_function(k: int, coefs: list[float]) -> type[tg.Function]:
    """A Function named ``N{k}`` computing Σ cᵢ sin(xᵢ) + xᵢ (so its name identifies the node)."""

    def forward(ctx, *xs):
        ctx.save_for_backward(*xs)
        return sum(c * np.sin(x) + x for c, x in zip(coefs, xs))

    def backward(ctx, g):
        xs = ctx.saved_tensors
        return tuple(g * (c * x.cos() + 1.0) for c, x in zip(coefs, xs))

    return type(
        f"N{k}",
        (tg.Function,),
        {"forward": staticmethod(forward), "backward": staticmethod(backward)},
    )


@st.composite
def random_dags(draw):
    """Leaves L0..L(m-1), then nodes N0..N(n-1); node k takes 1-3 inputs among earlier tensors."""
    n_leaves = draw(st.integers(1, 3))
    n_nodes = draw(st.integers(1, 12))
    spec = []
    for k in range(n_nodes):
        pool = n_leaves + k
        arity = draw(st.integers(1, min(3, pool)))
        args = draw(st.lists(st.integers(0, pool - 1), min_size=arity, max_size=arity))
        coefs = draw(st.lists(st.sampled_from([0.5, -1.0, 2.0]), min_size=arity, max_size=arity))
        spec.append((args, coefs))
    return n_leaves, spec


@given(random_dags())
def test_trace_order_is_a_reverse_topological_order(dag):
    n_leaves, spec = dag
    tensors = [Tensor(np.array([0.3 + 0.1 * i, -0.2]), requires_grad=True) for i in range(n_leaves)]
    inputs_of: dict[str, list[str]] = {}
    names = [f"L{i}" for i in range(n_leaves)]
    for k, (args, coefs) in enumerate(spec):
        fn = _node_function(k, coefs)
        tensors.append(fn.apply(*[tensors[a] for a in args]))
        names.append(f"N{k}")
        inputs_of[f"N{k}"] = [names[a] for a in args]
    root = tensors[-1]
    for t in tensors[n_leaves:]:
        t.retain_grad()

    # Nodes reachable from the root (by the test's own walk of the spec).
    reachable = {names[-1]}
    frontier = [names[-1]]
    while frontier:
        for p in inputs_of.get(frontier.pop(), []):
            if p not in reachable:
                reachable.add(p)
                frontier.append(p)

    with tg.trace(file=None) as tr:
        root.sum().backward()
    order = [s.op for s in tr.steps]
    assert order[0] == "Sum"
    order = order[1:]
    # Every reachable op node runs exactly once ...
    assert sorted(order) == sorted(r for r in reachable if r.startswith("N"))
    # ... newest op first (the engine's order: ops numbered as recorded, no graph sort) ...
    assert order == sorted(order, key=lambda name: -int(name[1:]))
    pos = {name: i for i, name in enumerate(order)}
    # ... and so after every node that consumes its output (reverse topological order).
    for node in order:
        for parent in inputs_of[node]:
            if parent.startswith("N"):
                assert pos[parent] > pos[node], (node, parent, order)
    # Each step's arriving gradient is the node's full gradient (all fan-out paths summed).
    for step in tr.steps[1:]:
        t = tensors[names.index(step.op)]
        assert step.grad_norm == pytest.approx(float(np.linalg.norm(t.grad.numpy())), rel=1e-12)


@given(random_dags(), st.integers(0, 2**32 - 1))
def test_random_dag_gradients_match_central_differences(dag, seed):
    """Every leaf's gradient is complete (all paths summed) whatever order the graph's nodes
    were recorded in: checked in float64 against central differences of the same graph."""
    n_leaves, spec = dag
    values = np.random.default_rng(seed).uniform(-1.0, 1.0, (n_leaves, 2))

    def build(leaves):
        tensors = list(leaves)
        for k, (args, coefs) in enumerate(spec):
            tensors.append(_node_function(k, coefs).apply(*[tensors[a] for a in args]))
        return tensors[-1].sum()

    leaves = [Tensor(v.copy(), requires_grad=True) for v in values]
    build(leaves).backward()
    h = 1e-6  # central differences: truncation O(h²) ~ 1e-12, rounding ~ 1e-16/h ~ 1e-10
    for i in range(n_leaves):
        for j in range(2):
            plus, minus = values.copy(), values.copy()
            plus[i, j] += h
            minus[i, j] -= h
            with tg.no_grad():
                f_plus = build([Tensor(v) for v in plus]).item()
                f_minus = build([Tensor(v) for v in minus]).item()
            expected = (f_plus - f_minus) / (2 * h)
            got = 0.0 if leaves[i].grad is None else float(leaves[i].grad.numpy()[j])
            assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), (i, j, spec)


def test_trace_file_must_be_a_stream_or_none():
    with pytest.raises(TypeError, match="text stream"):
        tg.trace(file="steps.txt")
