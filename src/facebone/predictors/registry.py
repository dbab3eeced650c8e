"""Predictor registry (timm style): each predictor module registers its classes by name.

Adding a predictor is adding one module with `@register_predictor("name")`; nothing else changes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from facebone.errors import FaceBoneError
from facebone.predictors.base import Predictor, PredictorStateError

_REGISTRY: dict[str, type[Predictor]] = {}

P = TypeVar("P", bound=type[Predictor])


def register_predictor(name: str) -> Callable[[P], P]:
    """Class decorator: make the predictor available as `create_predictor(name)`."""

    def decorate(cls: P) -> P:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"Predictor name {name!r} is already registered by {_REGISTRY[name]}.")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_predictors(pattern: str = "*") -> list[str]:
    """Registered predictor names matching a shell-style `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_predictor_class(name: str) -> type[Predictor]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FaceBoneError(
            f"Unknown predictor {name!r}; choose one of: {', '.join(list_predictors())}."
        ) from None


def create_predictor(name: str, **kwargs: Any) -> Predictor:
    """A new, unfitted predictor; `kwargs` are its constructor arguments."""
    cls = get_predictor_class(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FaceBoneError(f"Bad arguments for predictor {name!r}: {exc}") from None


def predictor_from_state(config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Predictor:
    """Rebuild a fitted predictor from `Predictor.get_state()` output (no pickle involved)."""
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise PredictorStateError("Predictor state is damaged: its config names no predictor.")
    if config["name"] not in _REGISTRY:
        raise PredictorStateError(
            f"Predictor state names unknown predictor {config['name']!r}; known: "
            f"{', '.join(list_predictors())}."
        )
    return _REGISTRY[config["name"]].from_state(config, tensors)
