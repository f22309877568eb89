"""Let a subpackage double as an API function: ``recsift.train(ds, "sasrec")`` calls
`recsift.api.train`, while ``from recsift.train import TrainConfig`` still imports from the
package. (Once ``recsift.train`` is imported, Python binds the *package* to that attribute of
``recsift``, shadowing the function; giving the package a ``__call__`` resolves the clash.)
"""
from __future__ import annotations

import importlib
import sys
import types


def make_callable(module_name: str, api_function: str) -> None:
    """Make module ``module_name`` callable as ``recsift.api.<api_function>``."""
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(importlib.import_module("recsift.api"), api_function)(*args, **kwargs)

    _CallableModule.__call__.__doc__ = f"Same as `recsift.api.{api_function}`."
    module.__class__ = _CallableModule
