"""Selectors: turn per-unit scores (or nothing, for random) into the kept indices."""
from .random import select_random

__all__ = ["select_random"]
