"""Registries filled by modules imported on first need (plugins), shared by models and curators.

A registry is a plain ``dict`` name -> object; the modules of method families that register
into it (``recsift.distill`` registers the model ``infae`` and the curator ``distill_cf``) are
listed as plugins and imported only when a name is missing or the full list is asked for, so
that the core packages never import the families that build on them.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from ..errors import unknown_name


def load_plugins(plugins: tuple[str, ...]) -> None:
    """Import every plugin module that exists (a family not installed is skipped)."""
    for mod in plugins:
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)


def lookup(table: dict[str, Any], name: str, what: str, plugins: tuple[str, ...]) -> Any:
    """``table[name]``, loading the plugins first if it is missing; else an `UnknownNameError`
    naming ``what`` and the closest known names."""
    if name not in table:
        load_plugins(plugins)
    try:
        return table[name]
    except KeyError:
        raise unknown_name(what, name, table) from None
