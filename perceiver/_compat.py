"""perceiver-io 0.11's names at their 0.11 import paths: module `__getattr__` hooks (PEP 562) that return this
library's one implementation and warn with its current spelling."""

import importlib
import warnings
from typing import Any, Callable, Dict, Tuple


def deprecated_aliases(module_name: str, aliases: Dict[str, Tuple[str, str]]) -> Callable[[str], Any]:
    """A module `__getattr__` (PEP 562) that resolves 0.11 names to their new objects with a DeprecationWarning.

    :param module_name: the module's `__name__`, for the error of unknown names.
    :param aliases: old name -> (new spelling shown in the warning, e.g. `perceiver.model.core.TokenInputAdapter`,
        import path `module:attribute` of the object). Objects are imported on first access, so that aliases can
        point to modules that import this one.
    """

    def __getattr__(name: str) -> Any:
        if name not in aliases:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        new_spelling, target = aliases[name]
        warnings.warn(
            f"{module_name}.{name} is deprecated, use {new_spelling} (a perceiver-io 0.11 name)",
            DeprecationWarning,
            stacklevel=2,
        )
        target_module, attribute = target.split(":")
        return getattr(importlib.import_module(target_module), attribute)

    return __getattr__
