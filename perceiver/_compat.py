"""perceiver-io 0.11's names at their 0.11 import paths: module `__getattr__` hooks that return the one
implementation of this library and warn with its current spelling."""

import importlib
import warnings
from typing import Callable, Dict, Tuple


def deprecated_names(module_name: str, aliases: Dict[str, Tuple[str, str]]) -> Callable[[str], object]:
    """A module `__getattr__` resolving each 0.11 name in `aliases` (name -> (module, name) of this library) with a
    DeprecationWarning naming the new spelling; other names raise AttributeError as usual."""

    def __getattr__(name: str) -> object:
        if name not in aliases:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        new_module, new_name = aliases[name]
        warnings.warn(
            f"{module_name}.{name} is deprecated, use {new_module}.{new_name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__
