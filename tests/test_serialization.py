"""tg.save / tg.load: round trips of flat and nested checkpoints, no pickle, atomic writes,
clear errors for missing and damaged files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim


def make_net(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, 3, seed=rng), nn.Sigmoid(), nn.Linear(3, 2, seed=rng))


def test_state_dict_round_trip(tmp_path: Path) -> None:
    net = make_net(0)
    path = tmp_path / "model.npz"
    tg.save(net.state_dict(), path)
    loaded = tg.load(path)
    assert list(loaded) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(isinstance(v, Tensor) for v in loaded.values())
    other = make_net(1)
    assert not np.array_equal(other[0].weight.numpy(), net[0].weight.numpy())
    other.load_state_dict(loaded)
    for (n1, p1), (n2, p2) in zip(net.named_parameters(), other.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())
    # a plain .npz: numpy reads it without pickle and sees the parameter names
    with np.load(path, allow_pickle=False) as f:
        assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(f.files)
        np.testing.assert_array_equal(f["2.weight"], net[2].weight.numpy())


def test_nested_checkpoint_keeps_structure_and_types(tmp_path: Path) -> None:
    net = make_net(0)
    opt = optim.SGD(net.parameters(), lr=0.5, momentum=0.9, nesterov=True)
    nn.F.quadratic_cost(net(Tensor(np.ones((2, 4)))), np.zeros((2, 2))).backward()
    opt.step()
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ckpt = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 7,
        "best": 0.25,
        "name": "run/1",
        "notes": None,
        "history": [1.0, 2.5, float("inf")],
        "shape": (3, 4),
        "flags": {"ok": True, 3: np.float32(1.5)},
        "ints": np.arange(4, dtype=np.int16),
        "frozen": Tensor([1.0, 2.0], requires_grad=True),
    }
    path = tmp_path / "ckpt.npz"
    tg.save(ckpt, path)
    back = tg.load(path)
    assert back["epoch"] == 7 and isinstance(back["epoch"], int)
    assert back["best"] == 0.25 and back["name"] == "run/1" and back["notes"] is None
    assert back["history"] == [1.0, 2.5, float("inf")]
    assert back["shape"] == (3, 4) and isinstance(back["shape"], tuple)
    assert back["flags"]["ok"] is True
    assert back["flags"][3] == np.float32(1.5) and isinstance(back["flags"][3], np.float32)
    assert back["ints"].dtype == np.int16 and isinstance(back["ints"], np.ndarray)
    assert back["frozen"].requires_grad and back["frozen"].numpy().tolist() == [1.0, 2.0]
    assert back["optimizer"]["param_groups"] == opt.state_dict()["param_groups"]
    assert set(back["optimizer"]["state"]) == {0, 1, 2, 3}
    for k in range(4):
        np.testing.assert_array_equal(
            back["optimizer"]["state"][k]["momentum_buffer"],
            opt.state_dict()["state"][k]["momentum_buffer"],
        )
    # it all loads back into fresh objects
    net2 = make_net(5)
    net2.load_state_dict(back["model"])
    opt2 = optim.SGD(net2.parameters(), lr=0.1)
    opt2.load_state_dict(back["optimizer"])
    assert opt2.param_groups[0]["nesterov"] is True
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=9)
    sched2.load_state_dict(back["scheduler"])
    assert sched2.step_size == 2 and sched2.last_epoch == sched.last_epoch


def test_unsupported_values_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"cannot save a set at 'a/b'"):
        tg.save({"a": {"b": {1, 2}}}, path)
    with pytest.raises(TypeError, match="dtype object"):
        tg.save({"w": np.array([None, 1], dtype=object)}, path)
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        tg.save({(1, 2): 3}, path)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.npz"
    tg.save({"w": np.ones(3)}, path)
    old = path.read_bytes()

    def broken_savez(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    np.testing.assert_array_equal(tg.load(path)["w"], np.ones(3))


def test_save_replaces_atomically_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    tg.save({"w": np.ones(2)}, path)
    os.chmod(path, 0o640)
    tg.save({"w": np.zeros(2)}, str(path))
    assert (os.stat(path).st_mode & 0o777) == 0o640
    np.testing.assert_array_equal(tg.load(str(path))["w"], np.zeros(2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tg.save({"w": np.ones(2)}, tmp_path / "no" / "such" / "dir.npz")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        tg.load(missing)
    good = tmp_path / "good.npz"
    tg.save({"w": np.arange(1000.0)}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.npz"):
        tg.load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz.*not a readable"):
        tg.load(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        tg.load(pickled)
    bad_meta = tmp_path / "badmeta.npz"
    np.savez(bad_meta, __tinygrad_sgd__=np.array("{not json"))
    with pytest.raises(ValueError, match="badmeta.npz.*damaged structure"):
        tg.load(bad_meta)


def test_foreign_npz_loads_as_flat_dict(tmp_path: Path) -> None:
    path = tmp_path / "foreign.npz"
    np.savez(path, weight=np.eye(2), bias=np.zeros(2))
    d = tg.load(path)
    assert set(d) == {"weight", "bias"} and isinstance(d["weight"], Tensor)
    assert zipfile.is_zipfile(path)


# ---------------------------------------------------------------- property: any saveable tree


def _leaves():
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    arrays = hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    )
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        arrays,
        arrays.filter(lambda a: a.dtype.kind == "f").map(
            lambda a: Tensor(a, requires_grad=bool(a.size % 2))
        ),
    )


def _trees():
    from hypothesis import strategies as st

    keys = st.one_of(st.text(alphabet="ab/.~_0", max_size=4), st.integers(-3, 3))
    return st.recursive(
        _leaves(),
        lambda kids: st.one_of(
            st.lists(kids, max_size=3),
            st.lists(kids, max_size=3).map(tuple),
            st.dictionaries(keys, kids, max_size=4),
        ),
        max_leaves=10,
    )


def _same(a: object, b: object) -> bool:
    if isinstance(a, Tensor):
        return (
            isinstance(b, Tensor)
            and a.dtype == b.dtype
            and a.requires_grad == b.requires_grad
            and np.array_equal(a.data, b.data)
        )
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(type(k1) is type(k2) for k1, k2 in zip(a, b))
            and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def test_any_tree_round_trips(tmp_path_factory: pytest.TempPathFactory) -> None:
    from hypothesis import given, settings

    folder = tmp_path_factory.mktemp("trees")

    @settings(max_examples=40)
    @given(tree=_trees())
    def check(tree: object) -> None:
        path = folder / "t.npz"
        tg.save(tree, path)
        assert _same(tree, tg.load(path))

    check()


# ---------------------------------------------------------------- keys (issue 20, item 7)


def _text_keys():
    from hypothesis import strategies as st

    # every code point, lone surrogates and NUL included, and the names that once collided
    return st.one_of(
        st.text(st.characters(exclude_categories=()), max_size=6),
        st.sampled_from(["w", "w.npy", "w.npy.npy", "", "data", "file", "allow_pickle", "~0"]),
        st.sampled_from(["__tinygrad_sgd__", ".", "..", "a/b", "a\x00b", "a\x00c", "\ud800"]),
    )


def test_every_text_key_round_trips_exactly(tmp_path_factory: pytest.TempPathFactory) -> None:
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("keys")
    values = st.integers(0, 2**16).map(lambda i: np.full(2, i, dtype=np.int64))
    trees = st.dictionaries(
        _text_keys(), st.one_of(values, st.dictionaries(_text_keys(), values, max_size=3))
    )

    @settings(max_examples=60)
    @given(tree=trees)
    @example(tree={"w": np.zeros(2, np.int64), "w.npy": np.ones(2, np.int64)})
    @example(tree={"a\x00b": np.zeros(2, np.int64), "a\x00c": np.ones(2, np.int64)})
    @example(tree={"a/b": np.zeros(2, np.int64), "a": {"b": np.ones(2, np.int64)}})
    def check(tree: dict) -> None:
        path = folder / "k.npz"
        tg.save(tree, path)
        assert _same(tree, tg.load(path))

    check()


def test_the_issue_keys(tmp_path: Path) -> None:
    p = tmp_path / "k.npz"
    tg.save({"w": Tensor.zeros(2), "w.npy": Tensor.ones(2)}, p)
    assert tg.load(p)["w.npy"].numpy().tolist() == [1.0, 1.0]
    tg.save({"a\x00b": Tensor.ones(2)}, p)
    assert tg.load(p)["a\x00b"].numpy().tolist() == [1.0, 1.0]
    # plain keys keep readable entry names for numpy.load
    tg.save({"model": {"0.weight": np.eye(2)}, "a b": np.ones(1)}, p)
    with np.load(p, allow_pickle=False) as f:
        assert "model/0.weight" in f.files and "a b" not in f.files


def test_a_file_written_by_the_previous_entry_naming_still_loads(tmp_path: Path) -> None:
    """Before the keys were checked, entries were named by their key path as it was: the member
    "w.npy.npy" held key "w.npy", which npz["w.npy"] misread as member "w.npy" (key "w")."""
    import json

    node = {
        "t": "dict",
        "items": [
            ["w", {"t": "ndarray", "entry": "w"}],
            ["w.npy", {"t": "ndarray", "entry": "w.npy"}],
        ],
    }
    meta = json.dumps({"format": 1, "root": node})
    p = tmp_path / "old.npz"
    np.savez(p, __tinygrad_sgd__=np.array(meta), **{"w": np.zeros(2), "w.npy": np.ones(2)})
    loaded = tg.load(p)
    assert loaded["w"].tolist() == [0.0, 0.0] and loaded["w.npy"].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- bounded reading (items 5, 6)


def test_structure_nested_5000_deep_is_refused_naming_the_file(tmp_path: Path) -> None:
    meta = '{"format": 1, "root": ' + '{"t": "list", "items": [' * 5000 + "]}" * 5000 + "}"
    p = tmp_path / "deep.npz"
    np.savez(p, __tinygrad_sgd__=np.array(meta))
    with pytest.raises(ValueError, match=r"deep\.npz.*nested 10001 deep, more than 303"):
        tg.load(p)


def test_save_refuses_what_load_would_and_the_deepest_allowed_round_trips(tmp_path: Path) -> None:
    from tinygrad_sgd.serialization import MAX_NESTING

    def nest(levels: int, leaf: object) -> object:
        tree = leaf
        for i in range(levels):
            tree = {"k": tree} if i % 2 else [tree]
        return tree

    p = tmp_path / "n.npz"
    for deepest in [nest(MAX_NESTING, np.ones(1)), nest(MAX_NESTING - 1, {}), nest(99, [None])]:
        tg.save(deepest, p)
        assert _same(deepest, tg.load(p))
    for too_deep in [nest(MAX_NESTING + 1, np.ones(1)), nest(MAX_NESTING, [])]:
        with pytest.raises(ValueError, match=f"nested more than {MAX_NESTING} deep"):
            tg.save(too_deep, p)
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="a structure that contains itself"):
        tg.save(cycle, p)


def test_decompression_is_capped_before_anything_is_allocated(tmp_path: Path) -> None:
    import tracemalloc

    p = tmp_path / "bomb.npz"
    np.savez_compressed(p, w=np.zeros(1 << 20))  # 8 MiB of zeros in about 8 KB
    assert p.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.npz.*more than the limit of 1000000 bytes"):
            tg.load(p, max_bytes=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # refused from the zip directory, the 8 MiB never allocated
    assert tg.load(p, max_bytes=9 << 20)["w"].shape == (1 << 20,)


def test_default_cap_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinygrad_sgd import serialization

    p = tmp_path / "c.npz"
    tg.save({"w": np.zeros(1000)}, p)
    monkeypatch.setattr(serialization, "MAX_LOAD_BYTES", 4000)
    with pytest.raises(ValueError, match=r"c\.npz.*limit of 4000 bytes"):
        tg.load(p)


def test_an_array_header_announcing_more_than_its_entry_holds_is_refused(tmp_path: Path) -> None:
    """A 1 KB entry whose header says 2**27 float64 (1 GiB): NumPy would allocate the GiB first."""
    import io
    import tracemalloc

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 27,)}
    )
    p = tmp_path / "liar.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("w.npy", header.getvalue() + bytes(1024))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"liar\.npz.*'w\.npy' announces an array of shape"):
            tg.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
