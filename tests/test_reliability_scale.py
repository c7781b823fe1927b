"""Scale: backward needs memory proportional to the graph, and intermediate gradients are
released as the backward pass moves on.

tests/test_autograd.py already runs a chain 10⁶ ops deep (no recursion limit) and a graph 10⁴
wide (right gradients); here the same kinds of graph are *measured* with tracemalloc (which sees
NumPy's buffers as well as Python objects):

* a chain of large arrays: the forward graph holds n arrays; backward adds only O(1) arrays on
  top of it at its peak (not O(n): gradients are dropped once passed on), and afterwards the
  graph is gone;
* a probe with hooks and weak references sees each intermediate gradient die one step later;
* chains of 5·10³ and 4·10⁴ scalar ops and graphs 2.5·10³ and 10⁴ wide: the bytes per node of
  the graph and of backward's peak are the same at both sizes (linear), and backward's peak is
  within a small factor of the graph itself.

benchmarks/memory.py measures the same at 10⁶ nodes (too slow under tracemalloc for the suite).
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


@contextmanager
def traced() -> Iterator[Callable[[], tuple[int, int]]]:
    """tracemalloc for the block; yields get_traced_memory (current, peak) in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        yield tracemalloc.get_traced_memory
    finally:
        tracemalloc.stop()


def _chain_of_arrays(n: int, size: int, retain_graph: bool) -> dict[str, float]:
    """Forward n sin ops on an array of ``size`` float64, then backward; sizes in arrays."""
    array = size * 8
    x = Tensor(np.random.default_rng(0).normal(size=size), requires_grad=True)
    seed = np.ones(size)
    with traced() as memory:
        base, _ = memory()
        y = x
        for _ in range(n):
            y = y.sin()
        graph, _ = memory()
        tracemalloc.reset_peak()
        y.backward(seed, retain_graph=retain_graph)
        after, peak = memory()
    assert x.grad is not None and x.grad.shape == (size,)
    return {
        "graph": (graph - base) / array,
        "extra": (peak - graph) / array,  # what backward adds on top of the graph, at its peak
        "after": (after - base) / array,  # with y (and x.grad) still held
    }


@pytest.mark.parametrize("retain_graph", [False, True])
def test_backward_over_a_long_chain_of_large_arrays_adds_o1_arrays(retain_graph):
    small = _chain_of_arrays(40, 20_000, retain_graph)
    large = _chain_of_arrays(160, 20_000, retain_graph)
    # the forward graph keeps one array per op (what each sin saved for backward)
    assert 39 <= small["graph"] <= 44 and 158 <= large["graph"] <= 166
    # backward's extra peak is a handful of arrays (gradient, cos, product), whatever n is:
    # if gradients were kept until the end it would grow by 120 arrays from 40 to 160 ops
    assert small["extra"] <= 8 and large["extra"] <= 8
    assert abs(large["extra"] - small["extra"]) <= 1
    if retain_graph:  # the graph stays for a second backward; the gradients did not
        assert large["after"] - large["graph"] <= 2
    else:  # freed as backward went: only y, x.grad and a few small objects remain
        assert small["after"] <= 4 and large["after"] <= 4


def test_intermediate_gradients_die_one_step_later():
    """Hooks on every tensor of a chain record a weak reference to the gradient array they
    receive and count how many of the earlier ones are still alive.  Then the same with
    retain_grad on every tensor, where all of them must stay alive: proof that the probe can see
    them.  (The arrays, not the Tensors the hooks see: in an ordinary backward the gradients
    travel as arrays and a hook gets a Tensor wrapped around one for its call.)"""

    def probe(keep: bool) -> list[int]:
        x = Tensor(np.linspace(-1, 1, 1000), requires_grad=True)
        ys = []
        y = x
        for _ in range(300):
            y = y.sin()
            ys.append(y)
        refs: list[weakref.ref[np.ndarray]] = []
        alive: list[int] = []

        def hook(g: Tensor) -> None:
            alive.append(sum(r() is not None for r in refs))
            refs.append(weakref.ref(g.data))

        for t in ys[:-1]:
            t.register_hook(hook)
            if keep:
                t.retain_grad()
        ys[-1].backward(np.ones(1000))
        return alive

    released = probe(keep=False)
    assert len(released) == 299 and max(released) <= 1  # at most the one just passed on
    kept = probe(keep=True)
    assert kept == list(range(299))  # retain_grad keeps every one: the probe sees them


def _scalar_chain(n: int) -> tuple[float, float]:
    """(graph bytes per node, backward peak bytes per node) for n scalar sin ops."""
    x = Tensor(np.array([0.5]), requires_grad=True)
    with traced() as memory:
        base, _ = memory()
        y = x
        for _ in range(n):
            y = y.sin()
        graph, _ = memory()
        tracemalloc.reset_peak()
        y.backward()
        _, peak = memory()
    return (graph - base) / n, (peak - base) / n


def _wide(n: int) -> tuple[float, float]:
    """(graph, backward peak) bytes per node for n leaves, each through sin, summed."""
    xs = [Tensor(np.array([float(i)]), requires_grad=True) for i in range(n)]
    with traced() as memory:
        base, _ = memory()
        total = tg.stack([x.sin() for x in xs]).sum()
        graph, _ = memory()
        tracemalloc.reset_peak()
        total.backward()
        _, peak = memory()
    assert xs[-1].grad is not None
    np.testing.assert_allclose(xs[-1].grad.item(), np.cos(n - 1.0))
    return (graph - base) / n, (peak - base) / n


@pytest.mark.parametrize(
    "build,sizes", [(_scalar_chain, (5_000, 40_000)), (_wide, (2_500, 10_000))]
)
def test_memory_is_proportional_to_the_graph(build, sizes):
    (g_small, p_small), (g_large, p_large) = (build(n) for n in sizes)
    # no more bytes per node at 8 or 4 times the size (10 % for allocator noise): linear, for
    # the graph and for backward (a fixed ~0.2 MB of first-use overhead makes the small one
    # slightly dearer per node)
    assert g_large <= 1.10 * g_small and p_large <= 1.10 * p_small
    assert g_large >= 0.75 * g_small  # and the graph really is proportional, not constant
    # backward's peak (graph included) stays within twice the graph: its own bookkeeping (the
    # topological order, the gradients in flight) is O(nodes) with a small constant
    assert p_large <= 2.0 * g_large
