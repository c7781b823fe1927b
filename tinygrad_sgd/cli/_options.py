"""Option types shared by the sub-commands: text parsed, then checked, as argparse types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

from ..train.run import Integer


class Check(Protocol):
    """A value check of :data:`tinygrad_sgd.train.run.CONFIG_FIELDS` (``Integer``, ``Real``,
    ...): returns the value (converted) or raises ``TypeError``/``ValueError``."""

    def __call__(self, value: Any) -> Any: ...

    def describe(self) -> str: ...


def checked(check: Check, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: the text is parsed by ``parse``, then checked by ``check``; either
    failing gives argparse's one-line error naming the option (``argument --seed: expected an
    integer >= 0, got -1``)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {check.describe()}, got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


# The seed of NumPy's generators (``SeedSequence`` takes any integer >= 0).
seed = checked(Integer(0), int)
