"""Attacks on face-verification systems, one subpackage per threat, one root class and one
registry (ART's class tree, timm's registry).

    attacks/
      base.py          Attack (root: family, name, get_params), errors, the black-box QueryFn
      registry.py      ATTACKS: register_attack, create_attack, list_attacks(family=...)
      membership/      was this pair or person in the training set? (LiRA, ART's black-box
                       and rule-based, label-only; shadows, metrics, ROC plots)
      inversion/       a face back from a leaked template (decoder, optimise, blackbox)
      extraction/      a copy of the verifier from its answers (surrogate)
      attribute/       a private trait (gender) from templates or answers
      system_target.py, embedding_target.py   how an attack reaches a system (full, or cached
                       embeddings)

This package imports nothing heavy: import the module you need (`facebone.attacks.membership.
lira`), or look an attack up by name with `create_attack`, which imports only its module.
"""

from facebone.attacks.base import FAMILIES, Attack, AttackError, AttackNotFittedError
from facebone.attacks.registry import (
    ATTACKS,
    check_attack_names,
    create_attack,
    family_of,
    list_attacks,
    register_attack,
)

__all__ = [
    "ATTACKS",
    "FAMILIES",
    "Attack",
    "AttackError",
    "AttackNotFittedError",
    "check_attack_names",
    "create_attack",
    "family_of",
    "list_attacks",
    "register_attack",
]
