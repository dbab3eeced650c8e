"""The one attack registry: every attack class, of every family, registers itself in its own
module with `@register_attack("name")`; `create_attack(name, ...)` builds one with its default
options and `list_attacks(family)` lists the names of one family (or all)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

from facebone.attacks.base import FAMILIES, Attack
from facebone.errors import FaceBoneError
from facebone.registry import Registry

# The built-in attacks' modules, family by family, in the order a full run uses their attacks;
# a look-up by name imports only the module that may hold it (no torch or ART for a rule).
ATTACKS: Registry[Attack] = Registry(
    "attack",
    {
        "blackbox-*": "facebone.attacks.membership.black_box",
        "rule-based": "facebone.attacks.membership.rule_based",
        "lira": "facebone.attacks.membership.lira",
        "lira-online": "facebone.attacks.membership.lira_online",
        "rmia": "facebone.attacks.membership.rmia",
        "label-only": "facebone.attacks.membership.label_only",
        "parameter": "facebone.attacks.membership.parameter",
        "decoder": "facebone.attacks.inversion.decoder",
        "optimise": "facebone.attacks.inversion.optimise",
        "blackbox": "facebone.attacks.inversion.blackbox",
        "surrogate": "facebone.attacks.extraction.surrogate",
        "attribute-template": "facebone.attacks.attribute.template",
        "attribute-blackbox": "facebone.attacks.attribute.blackbox",
    },
)
register_attack = ATTACKS.register


def attack_class(name: str) -> type[Attack]:
    """The class registered as `name` (an unknown name is a one-line error)."""
    factory: Any = ATTACKS.get(name)
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def family_of(name: str) -> str:
    """The threat family of attack `name`: one of `FAMILIES`."""
    return attack_class(name).family


def list_attacks(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered attack names matching `pattern`, of one `family` (None: all families)."""
    if family is not None and family not in FAMILIES:
        raise FaceBoneError(
            f"unknown attack family {family!r}; choose from: {', '.join(FAMILIES)}."
        )
    return [n for n in ATTACKS.list(pattern) if family is None or family_of(n) == family]


def check_attack_names(names: Sequence[str], family: str | None = None) -> list[str]:
    """The names, repeats dropped; none, an unknown one, or one of another family is an error
    listing the valid ones."""
    if isinstance(names, str):
        raise FaceBoneError("attacks must be a list of attack names, not one string.")
    chosen = list(dict.fromkeys(names))
    valid = list_attacks(family=family)
    if not chosen:
        raise FaceBoneError(f"no attack chosen; choose from: {', '.join(valid)}.")
    for name in chosen:
        ATTACKS.get(name)
        if name not in valid:
            raise FaceBoneError(
                f"{name!r} is a {family_of(name)} attack, not a {family} one; "
                f"choose from: {', '.join(valid)}."
            )
    return chosen


def create_attack(name: str, seed: int = 0, **options: Any) -> Attack:
    """A new, unfitted attack with its default options overridden by `options`; `seed` goes to
    attacks that take one (a rule needs none)."""
    factory = ATTACKS.get(name)
    if "seed" in inspect.signature(factory).parameters:
        options = {"seed": seed, **options}
    return ATTACKS.create(name, **options)
