"""Options declared once, with their constraints (scikit-learn's `_parameter_constraints`).

A class lists what each constructor option accepts; the library checks the options when it
fits, and the study configuration and the command line check the same declarations before
any work starts, each naming the option as its reader knows it (a key, a flag, an argument).
Upper bounds are part of a constraint: an option that would need more memory than any
machine has fails in a line, not after an hour.

    class NNPredictor(Predictor):
        _parameter_constraints = {"epochs": [Interval(int, 1, 100_000)], ...}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facebone.errors import FaceBoneError


class InvalidParameterError(FaceBoneError, ValueError):
    """An option is unknown, or its value breaks the option's declared constraint."""


@dataclass(frozen=True)
class Interval:
    """Finite numbers of `kind` (int: whole numbers; float: any number) from `low` to `high`
    (None: unbounded), the ends included as `closed` says: both, left, right or neither."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        wanted = numbers.Integral if self.kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (value == self.low and self.closed in ("right", "neither"))
        ):
            return False
        return self.high is None or not (
            value > self.high or (value == self.high and self.closed in ("left", "neither"))
        )

    def __str__(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low, high = (None if end is None else _number(end) for end in (self.low, self.high))
        if low is not None and high is not None:
            return f"{what} in {left}{low}, {high}{right}"
        if low is not None:
            return f"{what} {'>=' if left == '[' else '>'} {low}"
        if high is not None:
            return f"{what} {'<=' if right == ']' else '<'} {high}"
        return what


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Widths:
    """A non-empty list of at most `max_layers` layer widths, each from 1 to `max_width`."""

    max_width: int
    max_layers: int

    def accepts(self, value: Any) -> bool:
        width = Interval(int, 1, self.max_width)
        return (
            isinstance(value, list | tuple)
            and 1 <= len(value) <= self.max_layers
            and all(map(width.accepts, value))
        )

    def __str__(self) -> str:
        return f"1 to {self.max_layers} layer widths, each a whole number in [1, {self.max_width}]"


Constraint = Interval | Widths | None  # None: the option may be None
Constraints = Mapping[str, Sequence[Constraint]]

# The seeds a user gives. They feed numpy (any whole number >= 0) and torch (below 2**64),
# and FaceBone derives seeds from them (a split-distill teacher's is seed * 1000 + shard + 1),
# which must stay below torch's bound too.
SEED = Interval(int, 0, 2**32 - 1)


def meets(constraint: Constraint, value: Any) -> bool:
    return value is None if constraint is None else constraint.accepts(value)


def describe(constraints: Sequence[Constraint]) -> str:
    return " or ".join("None" if c is None else str(c) for c in constraints)


def value_problem(constraints: Sequence[Constraint], value: Any) -> str | None:
    """None if `value` meets one of `constraints`, else "must be ..., got ..." to follow the
    option's name."""
    if any(meets(c, value) for c in constraints):
        return None
    return f"must be {describe(constraints)}, got {value!r}"


def check_params(owner: str, constraints: Constraints, params: Mapping[str, Any]) -> None:
    """Every option of `params` is one of `constraints` and meets its constraint; the error
    names `owner` (the class or table the options belong to) and the option."""
    for name, value in params.items():
        if name not in constraints:
            raise InvalidParameterError(
                f"{owner}: unknown option {name!r}; the options are: {', '.join(constraints)}"
            )
        problem = value_problem(constraints[name], value)
        if problem is not None:
            raise InvalidParameterError(f"{owner}: {name} {problem}")
