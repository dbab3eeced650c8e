"""Predictor registry (timm style): each predictor module registers its classes by name.

Adding a predictor is adding one module with `@register_predictor("name")`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from facebone.predictors.base import Predictor, PredictorStateError
from facebone.registry import Registry

PREDICTORS: Registry[Predictor] = Registry(
    "predictor", ("facebone.predictors.distance", "facebone.predictors.nn")
)
list_predictors = PREDICTORS.list
create_predictor = PREDICTORS.create

P = TypeVar("P", bound=type[Predictor])


def register_predictor(name: str) -> Callable[[P], P]:
    """Class decorator: make the predictor available as `create_predictor(name)`; the class
    also learns its `name`, which its saved state records for `predictor_from_state`."""

    def decorate(cls: P) -> P:
        PREDICTORS.register(name)(cls)
        cls.name = name
        return cls

    return decorate


def get_predictor_class(name: str) -> type[Predictor]:
    """The class registered as `name` (predictors register classes, not functions)."""
    return cast("type[Predictor]", PREDICTORS.get(name))


def predictor_from_state(config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Predictor:
    """Rebuild a fitted predictor from `Predictor.get_state()` output (no pickle involved)."""
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise PredictorStateError("Predictor state is damaged: its config names no predictor.")
    if config["name"] not in PREDICTORS:
        raise PredictorStateError(
            f"Predictor state names unknown predictor {config['name']!r}; known: "
            f"{', '.join(list_predictors())}."
        )
    return get_predictor_class(config["name"]).from_state(config, tensors)
