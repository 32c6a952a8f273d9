"""Name -> factory registries (timm-style ``register_model``), for models, backbones, losses and sources.

A factory is a plain function; decorating it with a registry's ``register`` (``register_model``,
``register_backbone``, ``register_loss``) makes it reachable by its function name (``create_model``, ...). Unknown names raise
:class:`~unmask.errors.UnmaskError` listing the known ones, and unknown keyword arguments raise one that
lists the accepted ones (instead of a ``TypeError`` deep inside a constructor).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from unmask.errors import UnmaskError


class Registry:
    """A named table of factories of one kind ("model", "backbone")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
        """Register ``fn`` under ``name`` (default: its function name); usable as a decorator."""
        name = name or fn.__name__
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = fn
        return fn

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise UnmaskError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}")
        return self._entries[name]

    def call(self, name: str, **kwargs: Any) -> Any:
        """Call the factory ``name`` after checking ``kwargs`` against its signature."""
        fn = self.get(name)
        check_kwargs(fn, kwargs, f"{self.kind} {name!r}")
        return fn(**kwargs)


def accepted_kwargs(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def takes_var_kwargs(fn: Callable[..., Any]) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def check_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Raise UnmaskError naming unknown keyword arguments (skipped when ``fn`` takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    known = accepted_kwargs(fn)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise UnmaskError(f"unknown argument(s) for {what}: {', '.join(unknown)}; accepted: {', '.join(known)}")



def coerce_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """YAML scalars -> the types ``fn``'s signature declares: a bare ``true`` given for a ``str`` argument (a task
    named "true") becomes ``"true"``, an int for a ``float`` becomes a float. Other values pass unchanged."""
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):  # an annotation that cannot be resolved: leave the values as they are
        return dict(kwargs)
    out = dict(kwargs)
    for key, value in kwargs.items():
        hint = hints.get(key)
        allowed = set(typing.get_args(hint)) or {hint}
        if isinstance(value, bool) and str in allowed and bool not in allowed:
            out[key] = "true" if value else "false"
        elif isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
            out[key] = float(value)
    return out
