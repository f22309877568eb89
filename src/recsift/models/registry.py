"""Model registry: models register themselves by name with a decorator.

A config file or the CLI names a model; an unknown name lists the known ones.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError
from ..utils.plugins import load_plugins, lookup

T = TypeVar("T")
MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: register ``cls`` under ``name`` (a duplicate name is an error)."""

    def deco(cls: type[T]) -> type[T]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice ({MODELS[name].__name__} and {cls.__name__})")
        cls.name = name  # type: ignore[attr-defined]
        MODELS[name] = cls
        return cls

    return deco


#: modules outside ``recsift.models`` that register models (imported on first need, so that
#: ``recsift.models`` does not import the method families that build on it)
PLUGINS: tuple[str, ...] = ("recsift.distill",)


def list_models() -> list[str]:
    load_plugins(PLUGINS)
    return sorted(MODELS)


def get_model_class(name: str) -> type:
    return lookup(MODELS, name, "model", PLUGINS)


def build_model(name: str, **params: Any) -> Any:
    """Instantiate model ``name``; an unknown parameter is an error naming the valid ones."""
    cls = get_model_class(name)
    import inspect

    accepted = inspect.signature(cls).parameters
    # data dimensions are offered to every model; a model takes the ones it declares
    for dim in ("n_users", "n_items", "max_len"):
        if dim in params and dim not in accepted:
            params.pop(dim)
    from ..utils.params import validate_kwargs

    params = validate_kwargs(f"model {name!r}", cls, params)
    try:
        return cls(**params)
    except TypeError as e:
        valid = [p for p in inspect.signature(cls).parameters if p != "self"]
        raise ConfigError(f"model {name!r}: {e}; valid parameters: {valid}") from None
