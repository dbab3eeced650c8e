"""One registry shape for every pluggable part (timm style).

Backbones, predictors, attacks, defenses and regimes each keep a `Registry`; a module adds an
entry with the `register` decorator, and users look entries up with `create` / `list` (which the
packages re-export as `create_<kind>` / `list_<kind>s`). A repeated name is refused: two modules
claiming one name is a bug that would otherwise pick a winner silently.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from facebone.errors import FaceBoneError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> factories (classes or functions) of one kind of part.

    `builtin_modules` are imported on the first look-up, so registering is a side effect of
    importing a module and a look-up never depends on what the caller happened to import.
    """

    def __init__(self, kind: str, builtin_modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self._builtin_modules = tuple(builtin_modules)
        self._factories: dict[str, Callable[..., T]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: make `factory` available as `create(name, ...)`."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            known = self._factories.get(name)
            if known is not None and known is not factory:
                raise ValueError(f"{self.kind} name {name!r} is already registered by {known!r}.")
            self._factories[name] = factory
            return factory

        return decorate

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtin_modules:
                importlib.import_module(module)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style `pattern`, in registration order."""
        self._load_builtins()
        return [name for name in self._factories if fnmatch.fnmatchcase(name, pattern)]

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._factories

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as `name`; an unknown name is an error listing the known."""
        self._load_builtins()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(self._factories)
            raise FaceBoneError(f"unknown {self.kind} {name!r}; choose from: {known}.") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """A new part built by the factory registered as `name`."""
        return self.get(name)(*args, **kwargs)
