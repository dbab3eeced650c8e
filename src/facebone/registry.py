"""One registry shape for every pluggable part (timm style).

Backbones, predictors, attacks, defenses and regimes each keep a `Registry`; a module adds an
entry with the `register` decorator, and users look entries up with `create` / `list` (which the
packages re-export as `create_<kind>` / `list_<kind>s`). A repeated name is refused: two modules
claiming one name is a bug that would otherwise pick a winner silently.

Adding a part is one module plus its test; no other file changes:

    # my_defense.py
    from facebone.experiments.defenses import Defense, register_defense

    @register_defense("cosine-dlib")
    def cosine_dlib() -> Defense:
        return Defense("cosine-dlib", "dlib + cosine predictor", ("dlib",), predictor="cosine")

- backbone: `@register_backbone("name")` on a factory returning a `Backbone`; a spec
  `name:PATH` passes PATH as its `weights` argument.
- predictor: `@register_predictor("name")` on a `Predictor` subclass (it also sets `cls.name`,
  which its saved state records).
- membership attack: `@register_attack("name")` on a `MembershipAttack` subclass; keyword
  defaults name a variant (`@register_attack("blackbox-rf", model="rf")`), and `create_attack`
  passes the run's seed to attacks whose constructor takes one.
- defense / regime: `@register_defense("name")` / `@register_regime("name")` on a function
  returning the `Defense` / `Regime` of that name.

Importing the module registers its parts. A plugin's user (a test, a package, a config) imports
it before the look-up; a part shipped inside facebone also names its module in its registry's
`builtin_modules` (one line beside the registry), which the first look-up imports. The part's
test builds it by name and checks it on real faces; a test registers its part in a fixture and
removes it with `unregister` afterwards, so other tests still see only the built-ins
(tests/test_registry.py does this for a defense).
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from facebone.errors import FaceBoneError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Any]
    defaults: dict[str, Any]
    module: str  # where the factory is defined: built-ins list in their modules' order


def _module_of(factory: Callable[..., Any]) -> str:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return getattr(factory, "__module__", None) or ""


class Registry(Generic[T]):
    """Names -> factories (classes or functions) of one kind of part.

    `builtin_modules` are imported on the first look-up, so registering is a side effect of
    importing a module and a look-up never depends on what the caller happened to import. As a
    mapping of name patterns to modules, a look-up imports only the modules whose pattern
    matches the name (a backbone then loads only its own family: SFace never waits for
    PyTorch); listing imports them all.
    """

    def __init__(self, kind: str, builtin_modules: Iterable[str] | Mapping[str, str] = ()) -> None:
        self.kind = kind
        if isinstance(builtin_modules, Mapping):
            self._builtin_modules = tuple(builtin_modules.items())
        else:
            self._builtin_modules = tuple(("*", module) for module in builtin_modules)
        self._entries: dict[str, _Entry] = {}
        self._loaded = False

    def register(self, name: str, **defaults: Any) -> Callable[[F], F]:
        """Decorator: make `factory` available as `create(name, ...)`; `defaults` are keyword
        arguments every `create(name)` passes unless the caller overrides them, so one class can
        register several named variants."""

        def decorate(factory: F) -> F:
            module = _module_of(factory)
            if module not in self._modules():
                # A plugin may run before the built-ins load: load those that could hold
                # `name` first, or the clash would only show when they load.
                self._load_builtins(name)
            known = self._entries.get(name)
            if known is not None and (known.factory, known.defaults) != (factory, defaults):
                raise ValueError(
                    f"{self.kind} name {name!r} is already registered by {known.factory!r}."
                )
            self._entries[name] = _Entry(factory, defaults, module)
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Forget `name` (a test's or plugin's part); an unknown name is an error."""
        self.get(name)
        del self._entries[name]

    def _load_builtins(self, name: str | None = None) -> None:
        """Import the built-in modules that may register `name` (all of them for None)."""
        if self._loaded:
            return
        modules = [
            m for p, m in self._builtin_modules if name is None or fnmatch.fnmatchcase(name, p)
        ]
        for module in modules:
            importlib.import_module(module)
        # Set only once every module imported, so a failed import is retried (and reported).
        self._loaded = len(modules) == len(self._builtin_modules)

    def _modules(self) -> list[str]:
        return [module for _, module in self._builtin_modules]

    def _rank(self, entry: _Entry) -> int:
        modules = self._modules()
        return modules.index(entry.module) if entry.module in modules else len(modules)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style `pattern`: the built-ins in the order of
        their modules, each module's in registration order, then any registered later."""
        self._load_builtins()
        names = sorted(self._entries, key=lambda name: self._rank(self._entries[name]))
        return [name for name in names if fnmatch.fnmatchcase(name, pattern)]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._entries:
            self._load_builtins(name)
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as `name` (with its defaults bound); an unknown name is a
        one-line error listing the known ones."""
        if name not in self:
            known = ", ".join(self.list())
            raise FaceBoneError(f"unknown {self.kind} {name!r}; choose from: {known}.")
        entry = self._entries[name]
        if entry.defaults:
            return functools.partial(entry.factory, **entry.defaults)
        return entry.factory

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """A new part built by the factory registered as `name`; arguments the factory does not
        take are a one-line error naming them, not a traceback."""
        factory = self.get(name)
        try:
            signature = inspect.signature(factory)
        except ValueError:  # a factory without a readable signature checks its own arguments
            return factory(*args, **kwargs)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise FaceBoneError(f"bad arguments for {self.kind} {name!r}: {error}.") from None
        return factory(*args, **kwargs)
