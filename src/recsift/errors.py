"""Exceptions raised by recsift.

Every error a user can cause (bad path, bad column, bad budget, unknown name) is a
:class:`RecsiftError` whose message names the problem *and* the fix. The CLI prints that
message without a traceback and exits with status 2.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecsiftError(Exception):
    """Base class for errors caused by user input or configuration."""


class DataFormatError(RecsiftError, ValueError):
    """A file could not be parsed, or a column/value in it is invalid."""


class DatasetNotFoundError(RecsiftError, FileNotFoundError):
    """A dataset's files are not where recsift looked for them."""


class BudgetError(RecsiftError, ValueError):
    """A budget is not a fraction in (0, 1] nor a positive count within the data."""


class UnknownNameError(RecsiftError, KeyError):
    """A registry lookup (model, dataset, scorer, ...) used a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(RecsiftError, ValueError):
    """A configuration value is out of range or inconsistent."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """Build the error for an unknown registry name, listing the known ones and a suggestion."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}.")
