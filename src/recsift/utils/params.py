"""Check user-given keyword parameters against the annotations of the function or class they go to.

``--param hidden_size=abc`` or ``beta: abc`` in a config should fail with one message naming the
parameter, the value and the type it needs, before any work starts, not as a traceback from deep
inside a constructor. Values are validated (and coerced: ``1`` for a float, a list for a tuple) with
pydantic in its lax mode; a parameter whose annotation cannot be resolved or validated is passed on
unchecked.
"""
from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..errors import ConfigError


def _namespace(fn: Callable) -> dict:
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    target = inspect.unwrap(target)
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    return dict(vars(module)) if module else getattr(target, "__globals__", {})


@lru_cache(maxsize=None)
def _adapters(fn: Callable) -> dict[str, tuple[Any, Any, str]]:
    """``name -> (TypeAdapter, default, annotation text)`` for the parameters of ``fn`` with a usable annotation."""
    from pydantic import TypeAdapter

    ns = _namespace(fn)
    out = {}
    for p in inspect.signature(fn).parameters.values():
        ann = p.annotation
        if ann is p.empty:
            continue
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
        try:
            if isinstance(ann, str):  # postponed annotations (``from __future__ import annotations``)
                ann = eval(ann, ns)  # noqa: S307 - the library's own annotation strings
            out[p.name] = (TypeAdapter(ann), p.default, text)
        except Exception:  # a type only imported for type checking, an arbitrary class: left unchecked
            continue
    return out


def validate_kwargs(owner: str, fn: Callable, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated against ``fn``'s annotations; a wrong type is a :class:`ConfigError`."""
    from pydantic import ValidationError

    adapters = _adapters(fn)
    out = dict(params)
    for name, value in params.items():
        if name not in adapters:
            continue
        adapter, default, text = adapters[name]
        try:
            out[name] = adapter.validate_python(value)
        except ValidationError as e:
            msg = e.errors()[0]["msg"]
            hint = "" if default is inspect.Parameter.empty else f" (default {default!r})"
            raise ConfigError(f"{owner}: parameter {name}={value!r} is invalid: {msg}; give a value of type "
                              f"{text}{hint}") from None
    return out


def parse_params(items: list[str] | None) -> dict:
    """``key=value`` pairs (``--param``); values parsed as JSON when possible (numbers, lists, booleans)."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--param {it!r} must look like key=value (e.g. --param hidden_size=128)")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out
