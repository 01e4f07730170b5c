"""Argument checks shared across systems: a bad value raises ``ValueError`` naming it.

Each check returns the value unchanged, so it can wrap an assignment:
``self.rate = positive_number("rate", rate)``.
"""

from __future__ import annotations

import math


def positive_number(name: str, value: float) -> float:
    """A finite number greater than 0 (``bool`` is not a number here)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number greater than 0, got {value!r}")
    return value


def whole_number(name: str, value: int) -> int:
    """An ``int`` of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def non_negative(name: str, value: float) -> float:
    """A number of at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number of at least 0, got {value!r}")
    return value
