"""``tinygrad_sgd.viz``: DOT text, text tree, pictures through Graphviz, Jupyter display."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, viz

NODE_RE = re.compile(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)", .*\];$')
EDGE_RE = re.compile(r"^  n(\d+) -> n(\d+)(?: \[label=\"(\d+)\"\])?;$")

# The README's neuron, by hand: z = w·x + b, a = σ(z), C = ½(y − a)², δ = (a − y) σ'(z).
Z = 0.6 * 1.0 - 0.4 * 2.0 + 0.1
A = 1.0 / (1.0 + np.exp(-Z))
DELTA = (A - 1.0) * A * (1.0 - A)


def _neuron(dtype=np.float64):
    x = Tensor([1.0, 2.0], dtype=dtype)
    w = Tensor([0.6, -0.4], dtype=dtype, requires_grad=True)
    b = Tensor(0.1, dtype=dtype, requires_grad=True)
    a = (w @ x + b).sigmoid()
    cost = 0.5 * (1.0 - a) ** 2
    return cost, {"w": w, "b": b}


def _parse(dot: str):
    """Nodes {name: label} in order and edges [(src, dst, arg)] of to_dot's output."""
    lines = dot.splitlines()
    assert lines[0] == "digraph tinygrad_sgd {" and lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[1:-1]:
        m = NODE_RE.match(line)
        if m:
            nodes[m.group(1)] = m.group(2)
            continue
        m = EDGE_RE.match(line)
        if m:
            edges.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return nodes, edges


def _dot_program() -> str:
    exe = shutil.which("dot")
    assert exe is not None, "Graphviz's dot is needed for this test: apt-get install graphviz"
    return exe


# ---------------------------------------------------------------- DOT structure


def test_dot_nodes_are_named_by_topological_position():
    cost, params = _neuron()
    nodes, edges = _parse(viz.to_dot(cost, params=params))
    # 11 tensors: 0.5, 1.0 (y), w, x, MatMul, b, Add, Sigmoid, Sub, PowScalar, Mul
    assert list(nodes) == [f"n{i}" for i in range(11)]
    assert all(src < dst for src, dst, _ in edges), "an input must come before its op"
    assert len(edges) == 10
    ops = [lbl.split("\\n")[0] for lbl in nodes.values()]
    assert ops[-1] == "Mul" and "peripheries=2" in viz.to_dot(cost).splitlines()[-12]
    for op in ("MatMul", "Add", "Sigmoid", "Sub", "PowScalar", "Mul"):
        assert op in ops


def test_dot_labels_show_op_shape_dtype_and_value():
    cost, params = _neuron()
    nodes, _ = _parse(viz.to_dot(cost, params=params))
    labels = list(nodes.values())
    assert "w (param)\\n(2,) float64" in labels
    assert "b (param)\\n() float64\\n= 0.1" in labels
    assert "const\\n(2,) float64" in labels  # x: a leaf without requires_grad
    assert f"Sigmoid\\n() float64\\n= {A:.4g}" in labels
    cost32, _ = _neuron(np.float32)
    assert "float64" not in viz.to_dot(cost32).replace("const\\n() float64", "")


def test_multi_input_edges_are_labelled_with_argument_position():
    y = Tensor(1.0)
    a = Tensor(0.25, requires_grad=True)
    d = y - a
    nodes, edges = _parse(viz.to_dot(d, params={"y": y, "a": a}))
    names = {int(k[1:]): v.split("\\n")[0] for k, v in nodes.items()}
    by_arg = {arg: names[src] for src, _, arg in edges}
    assert by_arg == {"0": "y (input)", "1": "a (param)"}
    (e,) = _parse(viz.to_dot(a.sigmoid()))[1]
    assert e[2] is None  # one input: no position label


def test_fan_out_tensor_is_one_node_with_two_edges():
    x = Tensor(2.0, requires_grad=True)
    h = x * 3.0
    out = h * h
    nodes, edges = _parse(viz.to_dot(out))
    assert len(nodes) == 4  # x, 3.0, h, out
    h_index = len(nodes) - 2
    assert [(s, a) for s, d, a in edges if d == len(nodes) - 1] == [(h_index, "0"), (h_index, "1")]


def test_leaves_params_and_constants_are_marked():
    w = Tensor([1.0], requires_grad=True)
    v = Tensor([2.0], requires_grad=True)
    c = Tensor([3.0])
    out = (w * v + c).sum()
    nodes, _ = _parse(viz.to_dot(out, params={"layer.w": w}))
    heads = [lbl.split("\\n")[0] for lbl in nodes.values()]
    assert heads[:3] == ["layer.w (param)", "leaf", "Mul"]
    assert "const" in heads
    assert "box" in viz.to_dot(out).splitlines()[4]  # leaves are boxes, ops ellipses
    assert "ellipse" in viz.to_dot(out).splitlines()[6]


class _FakeModule:
    """Anything with named_parameters() names parameters, as nn.Module will."""

    def __init__(self, *params: Tensor) -> None:
        self._p = params

    def named_parameters(self):
        names = ["0.weight", "0.bias", "2.weight", "2.bias"]
        return iter(list(zip(names, self._p)))


def test_module_parameters_get_their_dotted_names():
    rng = np.random.default_rng(1)
    w1 = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b1 = Tensor(rng.standard_normal(3), requires_grad=True)
    w2 = Tensor(rng.standard_normal((1, 3)), requires_grad=True)
    b2 = Tensor(rng.standard_normal(1), requires_grad=True)
    x = Tensor([[0.5, -1.0]])
    a1 = (x @ w1.T + b1).sigmoid()
    out = (a1 @ w2.T + b2).sigmoid().sum()
    dot = viz.to_dot(out, params=_FakeModule(w1, b1, w2, b2))
    for name, shape in [("0.weight", "(3, 2)"), ("0.bias", "(3,)"), ("2.weight", "(1, 3)")]:
        assert f'"{name} (param)\\n{shape} float64"' in dot
    # (name, tensor) pairs work too
    assert viz.to_dot(out, params=list(_FakeModule(w1, b1, w2, b2).named_parameters())) == dot


def test_nn_module_parameter_names():
    nn = tg.nn
    net = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1), nn.Sigmoid())
    out = net(Tensor([[0.5, -1.0]])).sum()
    dot = viz.to_dot(out, params=net)
    assert '"0.weight (param)\\n(3, 2) float64"' in dot
    assert '"2.bias (param)\\n(1,) float64\\n= ' in dot  # one element: its value is shown


def test_bad_params_raise_type_error():
    t = Tensor(1.0, requires_grad=True) * 2.0
    with pytest.raises(TypeError, match="params"):
        viz.to_dot(t, params=42)
    with pytest.raises(TypeError, match="str name and a Tensor"):
        viz.to_dot(t, params={"w": [1.0]})
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.to_dot(np.ones(2))  # type: ignore[arg-type]


def test_show_grad_gives_hand_computed_norms():
    cost, params = _neuron()
    cost.backward(retain_graph=True)
    labels = _parse(viz.to_dot(cost, show_grad=True, params=params))[0].values()
    w_label = next(lbl for lbl in labels if lbl.startswith("w (param)"))
    b_label = next(lbl for lbl in labels if lbl.startswith("b (param)"))
    assert w_label.endswith(f"‖grad‖ = {abs(DELTA) * np.sqrt(5.0):.4g}")
    assert b_label.endswith(f"‖grad‖ = {abs(DELTA):.4g}")
    assert "‖grad‖" not in viz.to_dot(cost, show_grad=False, params=params)


def test_retain_grads_shows_every_intermediate_gradient():
    cost, params = _neuron()
    assert viz.retain_grads(cost) == 6
    cost.backward(retain_graph=True)
    labels = _parse(viz.to_dot(cost, show_grad=True, params=params))[0].values()
    sig = next(lbl for lbl in labels if lbl.startswith("Sigmoid"))
    add = next(lbl for lbl in labels if lbl.startswith("Add"))
    assert sig.endswith(f"‖grad‖ = {abs(A - 1.0):.4g}")  # ∂C/∂a = a − y
    assert add.endswith(f"‖grad‖ = {abs(DELTA):.4g}")  # δ = ∂C/∂z
    assert sum("‖grad‖" in lbl for lbl in labels) == 8  # 6 ops + w + b


def test_freed_graph_raises_and_says_how_to_keep_it():
    cost, _ = _neuron()
    cost.backward()
    for fn in (viz.to_dot, viz.to_text):
        with pytest.raises(RuntimeError, match=r"retain_graph=True"):
            fn(cost)


def test_special_characters_in_names_are_escaped():
    w = Tensor(1.0, requires_grad=True)
    dot = viz.to_dot(w * 2.0, params={'we"ird\\name\n{x}': w})
    assert '"we\\"ird\\\\name\\n{x} (param)' in dot
    proc = subprocess.run([_dot_program(), "-Tsvg"], input=dot.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"we&quot;ird\\name" in proc.stdout


# ---------------------------------------------------------------- determinism and Graphviz


def _draw(junk: int) -> str:
    """A [2, 3, 1] network's cost, drawn with gradients; ``junk`` tensors shift the addresses."""
    junk_tensors = [Tensor(np.zeros(k)) for k in range(junk)]
    x = Tensor([[0.5, -1.0], [1.0, 2.0]])
    w1 = Tensor.randn(3, 2, seed=1, requires_grad=True)
    b1 = Tensor.randn(3, seed=2, requires_grad=True)
    w2 = Tensor.randn(1, 3, seed=3, requires_grad=True)
    h = (x @ w1.T + b1).sigmoid()
    cost = 0.5 * ((1.0 - (h @ w2.T).sigmoid()) ** 2).mean() + (h * h).sum()
    viz.retain_grads(cost)
    cost.backward(retain_graph=True)
    assert len(junk_tensors) == junk
    return viz.to_dot(cost, show_grad=True, params={"w1": w1, "b1": b1, "w2": w2})


def _dot_in_subprocess(junk: int, hashseed: str) -> str:
    script = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import test_viz; "
        f"sys.stdout.write(test_viz._draw({junk}))"
    )
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout


def test_dot_is_identical_across_processes_and_runs():
    first = _dot_in_subprocess(0, "0")
    second = _dot_in_subprocess(57, "12345")
    assert first == second
    assert first.count(" -> ") > 10 and "‖grad‖" in first
    # and in this process, twice, with different tensors alive
    assert _draw(3) == first
    assert _draw(11) == first


def test_graphviz_accepts_the_dot(tmp_path):
    exe = _dot_program()
    cost, params = _neuron()
    viz.retain_grads(cost)
    cost.backward(retain_graph=True)
    graphs = [viz.to_dot(cost, show_grad=True, params=params), viz.to_dot(cost)]
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    graphs.append(viz.to_dot(tg.concatenate([x, x * 2.0], axis=0).softmax().logsumexp()))
    for dot in graphs:
        proc = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        svg = proc.stdout.decode()
        assert "<svg" in svg
        n = len(_parse(dot)[0])
        assert svg.count('class="node"') == n


def test_deep_graph_has_no_recursion_limit():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    nodes, edges = _parse(viz.to_dot(y))
    assert len(nodes) == 6001 and len(edges) == 6000
    text = viz.to_text(y)
    assert len(text.splitlines()) == 6001
    assert max(len(line) for line in text.splitlines()) < 400  # indentation is bounded
    assert "[depth 3000] …" in text


# ---------------------------------------------------------------- text tree


def test_text_tree_of_the_neuron():
    cost, params = _neuron()
    lines = viz.to_text(cost, params=params).splitlines()
    assert lines[0].startswith("n10 Mul () float64")
    assert lines[1].startswith("├── n0 const () float64 = 0.5")
    assert lines[2].startswith("└── n9 PowScalar")
    assert lines[3].startswith("    └── n8 Sub")
    assert any(line.endswith("n2 w (param) (2,) float64") for line in lines)
    assert len(lines) == 11
    # same node names as the DOT
    dot_nodes = _parse(viz.to_dot(cost, params=params))[0]
    for line in lines:
        name, head = re.search(r"(n\d+) (\S+)", line).groups()
        assert dot_nodes[name].startswith(head)


def test_text_tree_shows_shared_subgraph_once():
    x = Tensor(2.0, requires_grad=True)
    h = (x * 3.0).sigmoid()
    lines = viz.to_text(h + h * h).splitlines()
    assert sum("Sigmoid" in line for line in lines) == 3
    assert sum("(see above)" in line for line in lines) == 2
    assert sum("Mul" in line for line in lines) == 2  # x*3 expanded once, and h*h


def test_text_tree_with_gradients():
    cost, params = _neuron()
    cost.backward(retain_graph=True)
    text = viz.to_text(cost, show_grad=True, params=params)
    assert f"b (param) () float64 = 0.1 ‖grad‖ = {abs(DELTA):.4g}" in text


# ---------------------------------------------------------------- pictures


def test_render_svg_and_png(tmp_path):
    _dot_program()
    cost, params = _neuron()
    svg_path = viz.render(cost, tmp_path / "g.svg", params=params)
    svg = svg_path.read_text()
    assert "<svg" in svg and "Sigmoid" in svg and "w (param)" in svg
    png = viz.render(cost, tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = viz.render(cost, tmp_path / "g.out", format="pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.out", "g.png", "g.svg"]  # no temps


def test_render_rejects_unknown_format(tmp_path):
    cost, _ = _neuron()
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        viz.render(cost, tmp_path / "g.jpeg")
    assert list(tmp_path.iterdir()) == []


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    cost, _ = _neuron()
    with pytest.raises(viz.GraphvizError) as info:
        viz.render(cost, tmp_path / "g.svg")
    assert isinstance(info.value, RuntimeError)
    assert "apt-get install graphviz" in str(info.value)
    assert "brew install graphviz" in str(info.value)
    assert not (tmp_path / "g.svg").exists()


def test_render_keeps_old_file_when_dot_fails(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "dot"
    script.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    target = tmp_path / "g.svg"
    target.write_text("old")
    cost, _ = _neuron()
    with pytest.raises(viz.GraphvizError, match="syntax error in line 1"):
        viz.render(cost, target)
    assert target.read_text() == "old"


# ---------------------------------------------------------------- Jupyter


def test_tensor_mimebundle_shows_values_and_graph():
    _dot_program()
    cost, _ = _neuron()
    bundle = cost._repr_mimebundle_()
    assert bundle["text/plain"] == repr(cost)
    html = bundle["text/html"]
    assert html.startswith("<pre>Tensor(") and "&lt;Mul&gt;" in html
    assert "<svg" in html and "<?xml" not in html


def test_tensor_mimebundle_without_graphviz_uses_the_text_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    cost, _ = _neuron()
    html = cost._repr_mimebundle_()["text/html"]
    assert "<svg" not in html
    assert "PowScalar" in html and "└── " in html


def test_leaf_and_freed_tensors_show_values_only():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    assert leaf._repr_mimebundle_() == {"text/plain": repr(leaf)}
    cost, _ = _neuron()
    cost.backward()
    assert cost._repr_mimebundle_() == {"text/plain": repr(cost)}


def test_graph_object_displays_and_renders(tmp_path):
    _dot_program()
    cost, params = _neuron()
    g = viz.graph(cost, params=params)
    assert str(g) == viz.to_text(cost, params=params)
    assert g.dot == viz.to_dot(cost, params=params)
    bundle = g._repr_mimebundle_()
    assert bundle["text/plain"] == g.text and "<svg" in bundle["image/svg+xml"]
    assert g.render(tmp_path / "g.svg").read_text().count('class="node"') == 11


def test_a_leaf_is_a_graph_of_one_node():
    w = Tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = _parse(viz.to_dot(w, params={"w": w}))
    assert nodes == {"n0": "w (param)\\n(2,) float64"} and edges == []
    assert viz.to_text(Tensor(3.0)) == "n0 const () float64 = 3\n"
    assert viz.retain_grads(w) == 0
