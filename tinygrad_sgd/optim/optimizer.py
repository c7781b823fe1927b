"""``Optimizer``: the base of every update rule, holding ``param_groups`` and per-parameter state.

As in PyTorch, an optimizer keeps a list of *parameter groups*: dicts with ``"params"`` (a list of
Tensors) and the hyper-parameters (``"lr"``, ...) that apply to them.  A learning-rate schedule, or
the user, changes ``group["lr"]`` while training.  ``state[p]`` holds what a rule remembers about
parameter p between steps (e.g. SGD's momentum buffer).  Updates change ``p.data`` in place,
outside the graph: the Tensor objects stay the same, so a Module and an optimizer share them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..autograd import enable_grad
from ..autograd.mode import note_call
from ..tensor import Tensor

__all__ = ["Optimizer"]


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


#: Marks a hyper-parameter without a default (every group must then give it).
required: Any = _Required()


class Optimizer:
    """Base class: subclasses set ``defaults`` and implement :meth:`step`.

    ``params`` is an iterable of Tensors (one group) or of dicts (several groups, each a dict with
    ``"params"`` and optional hyper-parameters overriding ``defaults``).  Every parameter must be a
    floating leaf Tensor and may appear only once.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                "got a single Tensor (wrap it in a list)"
            )
        try:
            items = list(params)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or dicts, got "
                f"{type(params).__name__}"
            ) from None
        if not items:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = items if isinstance(items[0], Mapping) else [{"params": items}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (a dict with ``"params"`` and optional hyper-parameters), e.g. the layers
        of a network that is being extended while it trains."""
        if not isinstance(param_group, Mapping):
            raise TypeError(f"add_param_group: expected a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("add_param_group: the group has no 'params' entry")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} of the group is a "
                    f"{type(p).__name__}, not a Tensor"
                )
            if p.dtype.kind != "f":
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} has dtype {p.dtype}; only floating "
                    "tensors can be optimized"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} is not a leaf tensor (it was computed "
                    "by an op); optimize the leaves it came from, or detach() it"
                )
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{type(self).__name__}: a parameter appears twice in one group")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing.intersection(ids):
            raise ValueError(
                f"{type(self).__name__}: some parameters appear in more than one parameter group"
            )
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    f"{type(self).__name__}: parameter group didn't specify a value of the "
                    f"required hyper-parameter '{name}'"
                )
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyper-parameters (overridden by subclasses)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter: ``.grad = None`` (or new zero arrays)."""
        note_call(self.zero_grad, set_to_none)  # recorded by tg.compile (runs at every replay)
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = Tensor._wrap(np.zeros_like(p.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter from its ``.grad`` (``closure``, if given, recomputes and
        returns the loss first)."""
        raise NotImplementedError

    def _closure_loss(self, closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are referred to by their position across all groups (as in PyTorch), so the
        dict can be loaded into an optimizer built on a fresh model with the same structure.
        Arrays are copied: the dict is a snapshot.  ``tg.save`` can write it.
        """
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v))
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict`.

        The number of groups and of parameters per group must match, and each saved array must
        have its parameter's shape; arrays are cast to the parameter's dtype.  Nothing changes
        unless everything matches.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups' "
                "(from Optimizer.state_dict())"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter group(s), "
                f"this optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for k, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            sp = list(saved.get("params", []))
            if len(sp) != len(own["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {k} has {len(sp)} parameter(s) in the state "
                    f"but {len(own['params'])} here"
                )
            for idx, p in zip(sp, own["params"]):
                by_index[int(idx)] = p
        new_state: dict[Tensor, dict[str, Any]] = {}
        for raw_idx, entry in dict(state_dict["state"]).items():
            idx = int(raw_idx)
            if idx not in by_index:
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter index {idx}, which no group has"
                )
            p = by_index[idx]
            restored: dict[str, Any] = {}
            for key, value in dict(entry).items():
                if isinstance(value, Tensor):
                    value = value.data
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    if value.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state '{key}' of parameter {idx} has shape "
                            f"{value.shape} but the parameter has shape {p.shape}"
                        )
                    value = value.astype(p.dtype, copy=True)
                elif isinstance(value, np.ndarray):
                    value = value.copy()
                else:
                    value = copy.deepcopy(value)
                restored[key] = value
            new_state[p] = restored
        groups = []
        for saved, own in zip(saved_groups, self.param_groups):
            g = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            g["params"] = own["params"]
            self._check_group(g)
            groups.append(g)
        self.param_groups = groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)
