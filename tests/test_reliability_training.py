"""Training memory is flat: each training step's graph is released when the step ends.

A step of the book's network (nn.Linear + nn.Sigmoid layers, the quadratic cost, optim.SGD)
builds a graph of Contexts and intermediate Tensors.  After the step nothing of it may survive:
no Context object is alive, the number of live Tensors is the same after every step, the graph
dies by reference counting alone (no cycles left for the garbage collector), and NumPy's
buffers traced after 3,000 steps are exactly those after 100.  The same holds inside the
library's own training loop (``train.fit``), checked between epochs.

benchmarks/memory.py measures the peak RSS of 1,000 against 10,000 steps in fresh processes.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

from tinygrad_sgd import Tensor, nn, optim
from tinygrad_sgd.autograd import Context
from tinygrad_sgd.train import build_network, fit


def _live(cls: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _book_net(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, 30, init="standard", seed=rng),
        nn.Sigmoid(),
        nn.Linear(30, 10, init="standard", seed=rng),
        nn.Sigmoid(),
    )


def _data(rng: np.random.Generator, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    X = rng.random((n, 64))
    Y = np.eye(10)[rng.integers(0, 10, n)]
    return X, Y


def test_each_step_releases_its_graph_by_reference_counting():
    rng = np.random.default_rng(0)
    net = _book_net(rng)
    opt = optim.SGD(net.parameters(), lr=3.0)
    X, Y = _data(rng)
    before = _live(Context)
    tensors = []
    gc.disable()  # the graph must go by reference counting, with no cycle to collect
    try:
        for step in range(20):
            xb, yb = X[10 * step : 10 * step + 10], Y[10 * step : 10 * step + 10]
            opt.zero_grad()
            a = net(Tensor(xb))
            C = nn.F.quadratic_cost(a, Tensor(yb))  # C = 1/2m Σ ‖y − a‖²
            C.backward()
            opt.step()
            refs = [weakref.ref(a), weakref.ref(C)]
            ctx = C.grad_fn
            assert ctx is not None and ctx.inputs == ()  # freed by backward already
            del a, C, ctx
            assert all(r() is None for r in refs), f"step {step}: the graph outlived the step"
            tensors.append(sum(1 for o in gc.get_objects() if type(o) is Tensor))
    finally:
        gc.enable()
    assert _live(Context) == before
    assert len(set(tensors[1:])) == 1, f"live Tensors grow from step to step: {tensors}"


def test_graph_kept_alive_by_a_user_reference_is_released_with_it():
    """The test above could pass if nothing were ever recorded; here a step's output is kept
    across the next step, and then the Context count does show it, until it is dropped."""
    rng = np.random.default_rng(1)
    net = _book_net(rng)
    X, Y = _data(rng, 20)
    before = _live(Context)
    kept = nn.F.quadratic_cost(net(Tensor(X[:10])), Tensor(Y[:10]))  # no backward: graph kept
    assert _live(Context) >= before + 4  # linear, sigmoid, linear, sigmoid, cost
    del kept
    assert _live(Context) == before


def test_traced_memory_stays_flat_over_3000_steps():
    """NumPy's buffers (traced in their own tracemalloc domain) are exactly the same after 100
    and after 3,000 steps; all traced memory, Python objects included, is flat from step 2,000
    to 3,000.  NOTE: before that it rises by up to ~110 KB: CPython keeps up to 2,000 freed
    tuples of each size for reuse, and tracemalloc counts them as allocated."""
    rng = np.random.default_rng(2)
    net = _book_net(rng)
    opt = optim.SGD(net.parameters(), lr=3.0)
    X, Y = _data(rng, 1000)
    arrays_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    numpy_bytes, total = {}, {}
    gc.collect()
    tracemalloc.start()
    try:
        for step in range(1, 3001):
            k = (step % 100) * 10
            opt.zero_grad()
            C = nn.F.quadratic_cost(net(Tensor(X[k : k + 10])), Tensor(Y[k : k + 10]))
            C.backward()
            opt.step()
            del C
            if step in (100, 2000, 3000):
                snap = tracemalloc.take_snapshot().filter_traces(arrays_only)
                numpy_bytes[step] = sum(t.size for t in snap.traces)
                total[step] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # the gradients (and whatever else lives across steps): one leaked 10×30 array a step
    # would add 2.4 KB per step
    assert numpy_bytes[100] == numpy_bytes[2000] == numpy_bytes[3000], numpy_bytes
    grads = sum(p.grad.data.nbytes for p in net.parameters())  # made while tracing
    assert numpy_bytes[100] >= grads > 0  # the probe does see NumPy's buffers
    # NOTE: 4 KB of slack for interpreter bookkeeping; one leaked small object a step (~50 B)
    # would add 50 KB over these 1,000 steps
    assert abs(total[3000] - total[2000]) < 4096, total


def test_the_library_training_loop_keeps_nothing_between_epochs():
    rng = np.random.default_rng(3)
    X = rng.random((300, 64)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    net = build_network([64, 30, 10], init="standard", seed=0, dtype="float32")
    contexts, tensors = [], []

    def after_epoch(k, history):
        gc.collect()
        # graphs still holding their saved tensors (the last step's cost C is still referenced
        # by fit while this runs, but its Context was freed by backward)
        contexts.append(sum(1 for o in gc.get_objects() if type(o) is Context and not o._freed))
        tensors.append(sum(1 for o in gc.get_objects() if type(o) is Tensor))

    before = sum(1 for o in gc.get_objects() if type(o) is Context and not o._freed)
    history = fit(net, (X, y), (X[:50], y[:50]), epochs=5, log=None, on_epoch_end=after_epoch)
    assert len(history) == 5
    assert contexts == [before] * 5
    assert len(set(tensors)) == 1, f"live Tensors change between epochs: {tensors}"


def test_memory_benchmark_runs_and_peak_rss_is_flat():
    """benchmarks/memory.py --quick: fresh processes train 1,000 and 3,000 steps of the book's
    [784, 30, 10] network; their peak RSS must agree (NOTE: within 2 MiB, the allocator's
    granularity and the interpreter's free lists; one leaked 10×30 float32 array a step would
    add 2.3 MiB over the 2,000 extra steps, a leaked graph far more)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "memory.py"
    out = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    peaks = {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(r"^\| (\d+)\s+\| [\d.]+\s+\| ([\d.]+)\s+\|$", out.stdout, re.M)
    }
    assert set(peaks) == {1000, 3000}, out.stdout
    assert abs(peaks[3000] - peaks[1000]) < 2.0, peaks
    assert "chain 100,000" in out.stdout and "wide 10,000" in out.stdout
