"""Membership-attack registry: each attack class registers itself in its own module with
`@register_attack("name")`; `create_attack(name, seed)` builds one with its default options."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from facebone.attacks.base import MembershipAttack
from facebone.errors import FaceBoneError
from facebone.registry import Registry

# The built-in attacks' modules, in the order a full run uses their attacks.
ATTACKS: Registry[MembershipAttack] = Registry(
    "attack",
    (
        "facebone.attacks.black_box",
        "facebone.attacks.rule_based",
        "facebone.attacks.lira",
        "facebone.attacks.lira_online",
        "facebone.attacks.label_only",
    ),
)
register_attack = ATTACKS.register
list_attacks = ATTACKS.list


def check_attack_names(names: Sequence[str]) -> list[str]:
    """The names, repeats dropped; none, or an unknown one, is an error listing the valid ones."""
    if isinstance(names, str):
        raise FaceBoneError("attacks must be a list of attack names, not one string.")
    chosen = list(dict.fromkeys(names))
    if not chosen:
        raise FaceBoneError(f"no attack chosen; choose from: {', '.join(list_attacks())}.")
    for name in chosen:
        ATTACKS.get(name)
    return chosen


def create_attack(name: str, seed: int = 0) -> MembershipAttack:
    """A new, unfitted attack with its default options; `seed` goes to attacks that take one
    (a rule needs none)."""
    factory = ATTACKS.get(name)
    if "seed" in inspect.signature(factory).parameters:
        return factory(seed=seed)
    return factory()
