"""`Budget`: how much of the training data a curator may keep.

A budget is either a fraction ``r`` in (0, 1] of the curator's unit count ``N`` — giving
``m = floor(r * N)`` units — or a positive integer count ``m <= N``. Anything else is an error
that names the valid range. A float (or a string with a ".") is a fraction; an int is a count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import BudgetError


@dataclass(frozen=True)
class Budget:
    value: float | int

    def __post_init__(self) -> None:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise BudgetError(f"budget {v!r} is not a number; give a fraction in (0, 1] or a positive integer count")
        if isinstance(v, float):
            if not math.isfinite(v) or not (0.0 < v <= 1.0):
                raise BudgetError(
                    f"budget {v!r} is out of range: a fraction must be in (0, 1] (e.g. 0.5), "
                    "or give a positive integer count (e.g. 1000)"
                )
        elif v <= 0:
            raise BudgetError(f"budget {v!r} is out of range: a count must be a positive integer (or a fraction in (0, 1])")

    @classmethod
    def parse(cls, text: str | float | int | Budget) -> Budget:
        """Parse CLI/config input: ``"0.5"`` -> fraction, ``"1000"`` -> count."""
        if isinstance(text, Budget):
            return text
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return cls(text)
        s = str(text).strip()
        try:
            value = float(s) if any(c in s for c in ".eE") or s.lower() in {"nan", "inf", "-inf"} else int(s)
        except ValueError:
            raise BudgetError(
                f"budget {text!r} is not a number; give a fraction in (0, 1] such as 0.5, or a positive count such as 1000"
            ) from None
        return cls(value)

    @property
    def is_fraction(self) -> bool:
        return isinstance(self.value, float)

    def resolve(self, n_units: int, unit: str = "unit") -> int:
        """Number of units to keep out of ``n_units``."""
        if n_units <= 0:
            raise BudgetError(f"there are no {unit}s to select from")
        if self.is_fraction:
            m = math.floor(self.value * n_units + 1e-9)
            if m < 1:
                raise BudgetError(
                    f"budget {self.value} of {n_units} {unit}s keeps nothing (floor({self.value}*{n_units}) = 0); "
                    "use a larger fraction"
                )
            return m
        if self.value > n_units:
            raise BudgetError(
                f"budget {self.value} {unit}s is larger than the {n_units} {unit}s available; "
                f"give a count <= {n_units} or a fraction in (0, 1]"
            )
        return int(self.value)

    def __str__(self) -> str:
        return f"{self.value:g}" if self.is_fraction else str(self.value)
