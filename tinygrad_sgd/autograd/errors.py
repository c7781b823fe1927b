"""The engine's error messages, each saying what went wrong and what to do next.

The core raises them in one line each (``raise errors.freed(ctx)``), so that its loops read as
the algorithm; the words are here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Context


def freed(ctx: Context) -> RuntimeError:
    """A second backward through a graph whose saved values were freed."""
    return RuntimeError(
        f"Trying to backward through the graph a second time (at op {ctx.name}): its saved values "
        "were freed after the first backward. Pass retain_graph=True to the first backward() "
        "if you need to backpropagate through the same graph again."
    )


def rebound(ctx: Context, t: Any) -> RuntimeError:
    """A saved Tensor whose ``.data`` was replaced after forward saved it."""
    if ctx._out is not None and t is ctx._out():
        which = "its output"
    else:
        which = f"its input {next(i for i, inp in enumerate(ctx.inputs) if inp is t)}"
    kind = "a leaf" if t.is_leaf else "an intermediate"
    return RuntimeError(
        f"{ctx.name}.backward: {which} ({kind} tensor of shape {t.shape}, {t.dtype}) was given a "
        f"new array (t.data = ...) after {ctx.name} saved it for backward, so the gradient would "
        "not match the forward pass. Call backward() before replacing a tensor's data, or run "
        "the forward pass again."
    )


def no_graph() -> RuntimeError:
    """``backward()`` on a tensor that neither requires grad nor has a graph."""
    return RuntimeError(
        "backward() called on a tensor that does not require grad and has no graph: "
        "create the leaves with requires_grad=True, outside no_grad()"
    )


def needs_gradient(shape: tuple[int, ...]) -> RuntimeError:
    """``backward()`` without ``gradient=`` on a tensor of more than one element."""
    return RuntimeError(
        f"backward() without a gradient needs a tensor with one element; this one has shape "
        f"{shape}. Pass gradient= (dC/d(this tensor), of shape {shape})"
    )


def seed_shape(seed: tuple[int, ...], shape: tuple[int, ...]) -> ValueError:
    """``backward(gradient)`` whose gradient's shape is not the tensor's."""
    return ValueError(
        f"backward(): gradient has shape {seed} but the tensor has shape {shape}; "
        "they must be equal"
    )


def not_array_safe(ctx: Context, e: Exception) -> TypeError:
    """An op with ``array_backward = True`` whose backward failed on NumPy arrays."""
    return TypeError(
        f"{ctx.name}.backward declares array_backward = True but failed on NumPy arrays ({e}); "
        "use only what arrays and Tensors share (operators, .T, .reshape, .sum, np.asarray(v)) "
        "and Op.call(...) for other ops, or set array_backward = False"
    )


def gradient_count(ctx: Context, n: int) -> RuntimeError:
    """A backward that returned another number of gradients than forward had inputs."""
    return RuntimeError(
        f"{ctx.name}.backward returned {n} gradient(s) but forward took {len(ctx.inputs)} "
        "positional argument(s); return one per argument (None where unused)"
    )


def gradient_shape(ctx: Context, i: int, got: tuple[int, ...], shape: tuple[int, ...]) -> Exception:
    """A backward whose gradient for an input cannot be reduced to that input's shape."""
    return RuntimeError(
        f"{ctx.name}.backward returned a gradient of shape {got} for input {i} of shape {shape}; "
        "the shapes are not broadcast-compatible"
    )


def grad_input(k: int, t: Any, unused: bool) -> RuntimeError:
    """``grad()`` asked for the gradient of an input that is unused or needs no grad."""
    if unused:
        return RuntimeError(
            f"grad(): input {k} (shape {t.shape}) was not used to compute the output; "
            "pass allow_unused=True to get zeros for it"
        )
    return RuntimeError(f"grad(): input {k} (shape {t.shape}) does not require grad")
