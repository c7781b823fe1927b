"""``Module``: the container that holds a network's parameters w, b and its layers.

A module's ``forward`` computes the network's output a from an input x with Tensor operations;
its parameters are found automatically, because assigning a :class:`Parameter` (or a module) to an
attribute registers it, in the order of assignment::

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.zeros((3, 2)))   # registered as "w"
        def forward(self, a):
            return (a @ self.w.T).sigmoid()           # a' = σ(w a)

``parameters()`` then yields every weight and bias once, ``named_parameters()`` names them with
dotted paths (``"0.weight"``), and ``state_dict()`` / ``load_state_dict()`` save and restore their
values with the names, shapes and dtypes checked.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..autograd import no_grad
from ..autograd.mode import note_call, note_state
from ..tensor import Tensor

__all__ = ["IncompatibleKeys", "Module", "Parameter"]


class Parameter(Tensor):
    """A Tensor that is a trainable parameter of a :class:`Module` (a weight w or a bias b).

    It behaves exactly like a Tensor (every operation, ``.grad``, ``.data``); the only difference
    is that assigning it to a module attribute registers it, so ``parameters()`` finds it.  Made
    from a Tensor it shares that Tensor's array (as ``torch.nn.Parameter`` does); from anything
    else it copies.  ``requires_grad`` is True unless told otherwise.

    >>> w = Parameter(np.zeros((2, 3)))        # doctest: +SKIP
    >>> w.requires_grad, w.shape               # (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None) -> None:
        if data is None:
            data = np.zeros((0,))
        if isinstance(data, Tensor) and dtype is None:
            super().__init__(0.0)
            if requires_grad and data.dtype.kind != "f":
                raise TypeError(
                    f"Parameter: requires_grad=True needs a floating dtype, got {data.dtype}"
                )
            self.data = data.data
            self.requires_grad = bool(requires_grad)
        else:
            super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _is_parameter(value: Any) -> bool:
    """Parameters register as parameters; so do leaf Tensors created with requires_grad=True."""
    return isinstance(value, Parameter) or (
        isinstance(value, Tensor) and value.requires_grad and value.is_leaf
    )


def as_input(x: Any, module: Module) -> Any:
    """An input ``x`` of ``module`` as a Tensor, when it is numbers rather than a Tensor.

    A number or a (nested) list has no dtype of its own: it takes the dtype of the module's
    parameters (the first one's; the default dtype for a module without any), so that a list
    works in a float32 network as in a float64 one, as ``torch.tensor([...])`` (float32) works in
    PyTorch's float32 default.  An integer ndarray takes that dtype too; a floating ndarray keeps
    its own, so a float64 array given to a float32 layer is the ``TypeError`` of the dtype
    policy, not a silent conversion (nor a silent float64 computation).  Anything else (a list
    or tuple holding Tensors, a string, None) is passed on unchanged for ``forward``.
    """
    is_array = isinstance(x, (np.ndarray, np.generic))
    numbers = isinstance(x, (int, float)) and not isinstance(x, bool)
    if isinstance(x, (list, tuple)):
        numbers = not any(isinstance(v, Tensor) for v in x)
    if not (is_array or numbers):
        return x
    if is_array and x.dtype.kind in "fb":
        return Tensor(x)
    first = next(iter(module.parameters()), None)
    return Tensor(x, dtype=None if first is None else first.dtype)


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, assign parameters and sub-modules as attributes,
    and define ``forward``; calling the module calls ``forward``.

    Registration rules (as in PyTorch, plus one convenience):

    * a :class:`Parameter`, or a *leaf* Tensor with ``requires_grad=True``, becomes a parameter;
    * a ``Module`` becomes a sub-module (its parameters are found recursively);
    * other Tensors are plain attributes, unless registered with :meth:`register_buffer`
      (buffers are saved in ``state_dict`` but not trained);
    * ``None`` may be assigned to a parameter or sub-module name (e.g. ``bias=False``).

    ``training`` is True after construction; :meth:`train` and :meth:`eval` switch it for the
    whole tree (layers such as dropout may read it).
    """

    training: bool
    _parameters: dict[str, Tensor | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})

    # ------------------------------------------------------------ forward

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation (e.g. a = σ(w a + b)); subclasses define it, and
        ``module(x)`` calls it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``forward(*args, **kwargs)``, with the first argument made a Tensor when it is what
        ``Tensor()`` accepts (a number, a nested list of numbers, an ndarray), so that
        ``nn.Linear(4, 2)([[1.0, 2.0, 3.0, 4.0]])`` works as in PyTorch; see
        :func:`as_input` for its dtype."""
        if args and not isinstance(args[0], Tensor):
            args = (as_input(args[0], self), *args[1:])
        note_state(self, "training")  # tg.compile: a replay checks the train()/eval() mode
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration

    def _registries(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() in __init__ before assigning "
                "parameters or sub-modules"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        is_buffer = name in self.__dict__.get("_buffers", ()) and not isinstance(value, Parameter)
        if isinstance(value, Module) or (_is_parameter(value) and not is_buffer):
            params, buffers, modules = self._registries()
            for reg in (params, buffers, modules):
                reg.pop(name, None)
            (modules if isinstance(value, Module) else params)[name] = value
        else:
            d = self.__dict__
            registered = d.get("_parameters")
            if registered is not None and name in registered:
                if value is not None:
                    raise TypeError(
                        f"cannot assign {type(value).__name__} to parameter '{name}' of "
                        f"{type(self).__name__}: expected a Parameter (or a leaf Tensor with "
                        "requires_grad=True) or None"
                    )
                registered[name] = None
            elif name in d.get("_modules", ()):
                if value is not None:
                    raise TypeError(
                        f"cannot assign {type(value).__name__} to sub-module '{name}' of "
                        f"{type(self).__name__}: expected a Module or None"
                    )
                d["_modules"][name] = None
            elif name in d.get("_buffers", ()):
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(
                        f"cannot assign {type(value).__name__} to buffer '{name}' of "
                        f"{type(self).__name__}: expected a Tensor or None"
                    )
                d["_buffers"][name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for reg in (self._parameters, self._buffers, self._modules):
            reg.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Tensor | None) -> None:
        """Register ``param`` (a Parameter, a leaf Tensor requiring grad, or None) as ``name``."""
        _check_name(name, self)
        if param is not None and not _is_parameter(param):
            raise TypeError(
                f"register_parameter('{name}'): expected a Parameter or a leaf Tensor with "
                f"requires_grad=True, got {type(param).__name__}"
            )
        params, _, _ = self._registries()
        if param is None:
            params[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Register a non-trainable Tensor that ``state_dict`` saves (e.g. running statistics)."""
        _check_name(name, self)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer('{name}'): expected a Tensor or None, got {type(tensor).__name__}"
            )
        params, buffers, modules = self._registries()
        params.pop(name, None)
        modules.pop(name, None)
        buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as the sub-module ``name`` (names such as ``"0"`` are allowed)."""
        _check_name(name, self)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): expected a Module, got {type(module).__name__}")
        _, _, modules = self._registries()
        if module is None:
            modules[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    # ------------------------------------------------------------ traversal

    def named_modules(
        self, prefix: str = "", memo: set[int] | None = None
    ) -> Iterator[tuple[str, Module]]:
        """Every module in the tree (self first), each once, with its dotted name."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their names."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods: Iterator[tuple[str, Module]] = iter([(prefix, self)])
        if recurse:
            mods = (
                self.named_modules(prefix=prefix)
                if remove_duplicate
                else _all_named_modules(self, prefix)
            )
        for mod_prefix, mod in mods:
            registry: dict[str, Tensor | None] = mod.__dict__[kind]
            for name, t in registry.items():
                if t is None:
                    continue
                if remove_duplicate:
                    if id(t) in seen:
                        continue
                    seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, parameter)`` pairs in registration order, e.g. ``("0.weight", W)``.

        A parameter shared by several modules is yielded once, under its first name.
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every parameter (weights w and biases b) once, in registration order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """The non-trainable tensors (e.g. running statistics) with their dotted names."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The non-trainable tensors of this module (and its sub-modules with ``recurse``)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self) -> int:
        """The number of trainable scalars (each shared parameter counted once)."""
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------ modes and gradients

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``.grad = None`` (or zeros with set_to_none=False).

        Gradients accumulate across ``backward()`` calls, so a training step starts with this.
        """
        note_call(self.zero_grad, set_to_none)  # recorded by tg.compile (runs at every replay)
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor._wrap(np.zeros_like(p.data))

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` to ``mode`` on this module and every sub-module; return self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradient tracking of every parameter (e.g. to freeze a layer); return self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(m)`` on every sub-module (children first) and on self; return self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter and buffer to ``dtype`` in place (the Parameter objects
        are kept, so optimizers built before still hold them); gradients are dropped."""
        d = np.dtype(dtype)
        if d.kind != "f":
            raise TypeError(f"Module.to: expected a floating dtype, got {d}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f" and t.dtype != d:
                t.data = t.data.astype(d)
                t.grad = None
        return self

    # ------------------------------------------------------------ state

    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter and buffer by dotted name, as detached *copies* (a snapshot).

        Unlike PyTorch the values do not share memory with the module, so a saved "best model"
        does not change when training goes on.  Shared parameters appear under each name.
        """
        return OrderedDict((n, Tensor._wrap(t.data.copy())) for n, t in _state_items(self))

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values into the parameters and buffers in place (the objects are kept).

        Every key, shape and dtype is checked before anything is written, and one ``ValueError``
        lists every problem: missing keys, unexpected keys (both only when ``strict``), shape
        and dtype mismatches.  Values may be Tensors or arrays.  Returns the missing and
        unexpected keys (non-empty only with ``strict=False``).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of name -> Tensor/array, got "
                f"{type(state_dict).__name__}"
            )
        own = OrderedDict(_state_items(self))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems: list[str] = []
        if strict:
            if missing:
                problems.append("missing key(s): " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
        updates: list[tuple[Tensor, np.ndarray]] = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                arr = value.data
            elif isinstance(value, (np.ndarray, np.generic)):
                arr = np.asarray(value)
            else:
                problems.append(
                    f"{key!r}: expected a Tensor or ndarray, got {type(value).__name__}"
                )
                continue
            if arr.shape != target.shape:
                problems.append(
                    f"{key!r}: shape mismatch: checkpoint has {arr.shape}, "
                    f"the model has {target.shape}"
                )
            elif arr.dtype != target.dtype:
                problems.append(
                    f"{key!r}: dtype mismatch: checkpoint has {arr.dtype}, the model has "
                    f"{target.dtype} (convert the model with .to(dtype) or the values with "
                    ".astype first)"
                )
            else:
                updates.append((target, arr))
        if problems:
            raise ValueError(
                f"error(s) loading state_dict into {type(self).__name__}:\n  "
                + "\n  ".join(problems)
            )
        with no_grad():
            for target, arr in updates:
                target._overwrite(arr)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (e.g. ``in_features=3``)."""
        return ""

    def __repr__(self) -> str:
        children = [
            f"({name}): " + repr(m).replace("\n", "\n  ")
            for name, m in self._modules.items()
            if m is not None
        ]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _check_name(name: str, module: Module) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: a name must be a str, got {type(name).__name__}")
    if not name or "." in name:
        raise ValueError(
            f"{type(module).__name__}: invalid name {name!r} (must be non-empty, without '.')"
        )


def _all_named_modules(module: Module, prefix: str) -> Iterator[tuple[str, Module]]:
    """Every (name, module) path, a shared module once per path (for state_dict)."""
    yield prefix, module
    for name, m in module._modules.items():
        if m is not None:
            yield from _all_named_modules(m, f"{prefix}.{name}" if prefix else name)


def _state_items(module: Module) -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) of every parameter then buffer of each module, module by module."""
    for mod_prefix, mod in _all_named_modules(module, ""):
        for kind in ("_parameters", "_buffers"):
            for name, t in mod.__dict__[kind].items():
                if t is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), t
