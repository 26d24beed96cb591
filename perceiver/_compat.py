"""perceiver-io 0.11's spellings: its names at their 0.11 import paths (module `__getattr__` hooks, PEP 562, that return
this library's one implementation), its positional parameter orders and its parameter names, each warning with the
current spelling."""

import functools
import importlib
import inspect
import warnings
from typing import Any, Callable, Dict, Sequence, Tuple


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


def positional_0_11(
    callable_name: str, names_0_11: Sequence[str], args: Sequence[Any], kwargs: Dict[str, Any], new_spelling: str
) -> Dict[str, Any]:
    """Binds a call made with perceiver-io 0.11's positional parameter order: `args` to `names_0_11`, merged with
    `kwargs`. Warns (DeprecationWarning) with `new_spelling`; raises TypeError like Python for too many or
    repeated arguments."""
    if len(args) > len(names_0_11):
        raise TypeError(f"{callable_name}() takes at most {len(names_0_11)} positional arguments ({len(args)} given)")
    bound = dict(zip(names_0_11, args))
    repeated = sorted(set(bound) & set(kwargs))
    if repeated:
        raise TypeError(f"{callable_name}() got multiple values for arguments {repeated}")
    warnings.warn(
        f"{callable_name}() with perceiver-io 0.11's positional order ({', '.join(names_0_11[: len(args)])}) is "
        f"deprecated, use {new_spelling}",
        DeprecationWarning,
        stacklevel=3,
    )
    return {**bound, **kwargs}


def renamed_keywords(func: Callable[..., Any], **renamed: str) -> Callable[..., Any]:
    """`func`, also accepting the keyword arguments perceiver-io 0.11 named differently (`old=new`): each is passed
    on as `new`, with a DeprecationWarning. Its signature shows the old names as keyword-only parameters."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old, new in renamed.items():
            if old in kwargs:
                warnings.warn(
                    f"{func.__name__}({old}=...) is deprecated, use {func.__name__}({new}=...) "
                    "(a perceiver-io 0.11 parameter name)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both {old}= and {new}=; pass {new}= only")
                kwargs[new] = kwargs.pop(old)
        return func(*args, **kwargs)

    signature = inspect.signature(func)
    old_parameters = [inspect.Parameter(old, inspect.Parameter.KEYWORD_ONLY, default=None) for old in renamed]
    parameters = list(signature.parameters.values())
    var_keyword = [p for p in parameters if p.kind == p.VAR_KEYWORD]
    parameters = [p for p in parameters if p.kind != p.VAR_KEYWORD] + old_parameters + var_keyword
    wrapper.__signature__ = signature.replace(parameters=parameters)
    return wrapper
