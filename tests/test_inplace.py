"""In-place safety: an array saved for backward cannot be changed before the backward pass.

Backward formulas read the arrays forward saved (∂(a·b)/∂a = b), so a write into one of them in
between would make the gradient silently wrong.  The engine makes saved input arrays read-only
while a graph that saved them is alive; the write fails at once.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim

READ_ONLY = "read-only"


def test_write_into_a_saved_leaf_before_backward_raises_and_gradient_stays_right():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0], requires_grad=True)
    loss = (w * x).sum()  # Mul saved w's and x's arrays: ∂/∂w = x, ∂/∂x = w
    with pytest.raises(ValueError, match=READ_ONLY):
        w.data[...] = 0.0
    with pytest.raises(ValueError, match=READ_ONLY):
        x.data[0] += 1.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])
    w.data[...] = 0.0  # after backward the graph is freed: writing is legal again
    assert w.data.tolist() == [0.0, 0.0]


def test_intermediate_arrays_are_protected_too():
    x = Tensor([0.5, -1.0], requires_grad=True)
    h = x * 2.0
    y = (h * h).sum()  # Mul saves h's array
    with pytest.raises(ValueError, match=READ_ONLY):
        h.data[0] = 100.0
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.data)


def test_dropped_graph_releases_its_arrays():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    assert not w.data.flags.writeable
    del loss  # never backpropagated: freed by reference counting
    assert w.data.flags.writeable


def test_an_array_saved_by_two_graphs_stays_locked_until_both_are_freed():
    w = Tensor([1.0, 2.0], requires_grad=True)
    first = (w * 3.0).sum()
    second = (w * w).sum()
    first.backward()
    assert not w.data.flags.writeable  # `second` still needs w's values
    second.backward()
    assert w.data.flags.writeable
    np.testing.assert_array_equal(w.grad.numpy(), [3.0 + 2.0, 3.0 + 4.0])


def test_retained_graph_then_optimizer_step_then_backward_raises():
    """As in PyTorch: the step is legal, a later backward through the stale graph is not."""
    w = Tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, -4.0])
    opt.step()  # the graph still holds w's old array (read-only): the step gives w a new one
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])
    with pytest.raises(
        RuntimeError, match=r"Mul\.backward: its input 0 \(a leaf tensor of shape \(2,\)"
    ):
        loss.backward()


def test_replacing_data_between_forward_and_backward_is_detected():
    x = Tensor([0.5, 2.0], requires_grad=True)
    h = x.exp()  # Exp saves its output
    y = (h * 3.0).sum()
    h.data = np.zeros(2)
    with pytest.raises(RuntimeError, match=r"Mul\.backward: its input 0 \(an intermediate"):
        y.backward()
    x2 = Tensor([0.5, 2.0], requires_grad=True)
    e = x2.exp()
    e.data = e.data.copy()
    with pytest.raises(RuntimeError, match=r"Exp\.backward: its output"):
        e.sum().backward()


def test_optimizer_updates_after_backward_are_in_place():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    weight_array = model.weight.data
    for _ in range(3):
        opt.zero_grad()
        nn.functional.quadratic_cost(
            model(Tensor(np.ones((4, 3)))), Tensor(np.zeros((4, 2)))
        ).backward()
        opt.step()
    assert model.weight.data is weight_array and weight_array.flags.writeable


def test_load_state_dict_while_a_graph_is_alive():
    model = nn.Linear(2, 1)
    out = model(Tensor([[1.0, 2.0]])).sum()  # the graph saved the weight's array
    state = {k: v * 0 + 7.0 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert (model.weight.numpy() == 7.0).all()
    with pytest.raises(RuntimeError, match="Linear.backward: its input 1"):
        out.backward()  # as in PyTorch: the graph's weight was replaced after the forward pass


def test_arrays_read_only_beforehand_stay_read_only():
    frozen = np.ones(3)
    frozen.flags.writeable = False
    t = Tensor._wrap(frozen, requires_grad=True)
    (t * t).sum().backward()
    assert not frozen.flags.writeable
    b = Tensor([1.0, 2.0], requires_grad=True).broadcast_to(2, 2)  # a read-only NumPy view
    (b * b).sum().backward()
    assert not b.data.flags.writeable


def test_no_lock_without_a_graph():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = w * w
    w.data[0] = 5.0
    assert y.numpy().tolist() == [1.0, 4.0]
    c = Tensor([1.0]) * Tensor([2.0])  # nothing requires grad
    assert c.data.flags.writeable


def test_locks_do_not_leak_over_many_steps():
    from tinygrad_sgd import autograd

    w = Tensor(np.ones((5, 5)), requires_grad=True)
    for _ in range(50):
        (w @ w).sum().backward()
        dropped = (w * w).sum()  # a graph dropped without backward (at the next loop turn)
    del dropped
    gc.collect()
    assert autograd.inplace._counts == {}
    assert w.data.flags.writeable


def test_locks_balance_when_threads_share_a_weight():
    import threading

    from tinygrad_sgd import autograd

    w = Tensor(np.ones((4, 4)), requires_grad=True)
    errors = []

    def work():
        try:
            for _ in range(300):
                (w @ w).sum().backward()
                dropped = (w * w).sum()  # noqa: F841  (a graph dropped without backward)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    gc.collect()
    assert errors == []
    assert autograd.inplace._counts == {} and w.data.flags.writeable


# ------------------------------------------------------------------ a user's arrays stay theirs


def test_an_ndarray_operand_is_a_constant_the_callers_writes_cannot_reach():
    # Issue 13: the operand used to be wrapped without a copy and locked until backward.
    t = Tensor([1.0, 1.0, 1.0], requires_grad=True)
    c = np.array([1.0, 2.0, 3.0])
    y = (t * c).sum()
    c[0] = 7.0  # neither refused nor seen by the gradient (PyTorch converts such an operand)
    y.backward()
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 2.0, 3.0])
    assert c.flags.writeable and c[0] == 7.0


def test_an_ndarray_target_of_a_cost_stays_writeable():
    a = Tensor([[0.2, 0.8]], requires_grad=True)
    y = np.array([[0.0, 1.0]])
    cost = nn.F.quadratic_cost(a, y)
    y[0, 0] = 5.0
    cost.backward()
    np.testing.assert_allclose(a.grad.numpy(), [[0.2, -0.2]])  # (a − y)/n with the old y


def test_from_numpy_shares_memory_and_is_locked_while_a_graph_saves_it():
    arr = np.array([1.0, 2.0])
    x = Tensor.from_numpy(arr)
    assert np.shares_memory(x.data, arr) and x.dtype == arr.dtype
    arr[0] = 3.0
    assert x.data[0] == 3.0  # one buffer, both ways
    w = Tensor([0.5, 0.5], requires_grad=True)
    loss = (w * x).sum()  # Mul saves x's array
    with pytest.raises(ValueError, match=READ_ONLY):
        arr[1] = 9.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 2.0])
    arr[1] = 9.0  # the graph is freed: the caller may write again


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, np.array(["a"]), np.array([1 + 2j])])
def test_from_numpy_refuses_what_is_not_a_numeric_ndarray(bad):
    with pytest.raises(TypeError, match="from_numpy"):
        Tensor.from_numpy(bad)


def test_from_numpy_keeps_integer_dtypes_as_torch_does():
    assert Tensor.from_numpy(np.arange(3)).dtype == np.arange(3).dtype


def test_a_view_saved_by_a_graph_locks_its_base_too():
    # Issue 20, item 8: only the view was locked, so a write through its base reached it.
    base = np.array([1.0, 2.0, 3.0])
    view = base[:2]
    w = Tensor([1.0, 1.0], requires_grad=True)
    c = (w * Tensor.from_numpy(view)).sum()
    with pytest.raises(ValueError, match=READ_ONLY):
        base[0] = 50.0
    c.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])
    base[0] = 50.0  # both are writeable again once the graph is freed
    view[1] = 7.0
    assert base.tolist() == [50.0, 7.0, 3.0]


def test_a_view_of_a_view_locks_the_memory_owner_and_unlocks_it():
    base = np.zeros((3, 4))  # owns its memory
    inner = base[1:][:, :2]  # NumPy links a view straight to the owner
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    c = (w * Tensor.from_numpy(inner)).sum()
    for a in (base, base[1:], inner):  # base[1:] is made after the lock: read-only from birth
        with pytest.raises(ValueError, match=READ_ONLY):
            a[...] = 1.0
    del c
    gc.collect()
    assert base.flags.writeable and inner.flags.writeable
    assert tg.autograd.inplace._counts == {}


# ------------------------------------------------------------------ copying tensors


def test_deepcopy_and_pickle_of_a_non_leaf_refuse_clearly(recwarn):
    import copy
    import pickle

    u = Tensor([1.0, 2.0], requires_grad=True)
    y = u * 2
    with pytest.raises(RuntimeError, match=r"copy.deepcopy: only leaf tensors .* Mul"):
        copy.deepcopy(y)
    with pytest.raises(RuntimeError, match=r"pickle: only leaf tensors .* Mul"):
        pickle.dumps(y)
    del y
    gc.collect()
    assert not [w for w in recwarn if "Exception ignored" in str(w.message)]
    assert tg.autograd.inplace._counts == {} and u.data.flags.writeable


def test_deepcopy_and_pickle_of_a_leaf_copy_data_grad_and_flag():
    import copy
    import pickle

    u = Tensor([1.0, 2.0], requires_grad=True)
    (u * u).sum().backward()
    for c in (copy.deepcopy(u), pickle.loads(pickle.dumps(u))):
        assert c.requires_grad and c.is_leaf
        np.testing.assert_array_equal(c.data, u.data)
        np.testing.assert_array_equal(c.grad.data, [2.0, 4.0])
        assert not np.shares_memory(c.data, u.data)
        assert not np.shares_memory(c.grad.data, u.grad.data)
    d = copy.deepcopy(u.detach() * 3)  # a result computed without grad is a leaf too
    np.testing.assert_array_equal(d.data, [3.0, 6.0])
