"""Run several membership attacks against one target and evaluate them on known members and
non-members, at the level of pairs or of people."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from facebone.attacks import ATTACKS, create_attack
from facebone.attacks.base import (
    QueryFn,
    ShadowTrainer,
    cached_shadow_trainer,
    check_pair_list,
    identity_scores,
    pair_identities,
    pair_key,
)
from facebone.attacks.metrics import evaluate_scores
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError

log = logging.getLogger(__name__)

LEVELS = ("pair", "identity")
DEFAULT_ATTACKS = tuple(ATTACKS)


def _checked_inputs(
    attacker_pairs: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    level: str,
    attacks: Sequence[str],
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    if level not in LEVELS:
        raise FaceBoneError(f"level must be one of {', '.join(LEVELS)}, got {level!r}.")
    if isinstance(attacks, str):
        raise FaceBoneError("attacks must be a list of attack names, not one string.")
    if not attacks:
        raise FaceBoneError(f"no attack chosen; choose from: {', '.join(ATTACKS)}.")
    unknown = [name for name in attacks if name not in ATTACKS]
    if unknown:
        raise FaceBoneError(f"Unknown attack {unknown[0]!r}; choose from: {', '.join(ATTACKS)}.")
    attacker = check_pair_list(attacker_pairs, "attacker_pairs")
    inside = check_pair_list(members, "members")
    outside = check_pair_list(nonmembers, "nonmembers")
    both = {pair_key(p) for p in inside} & {pair_key(p) for p in outside}
    if both:
        example = sorted(next(iter(both)))
        raise FaceBoneError(
            f"{len(both)} image pairs are both members and non-members, for example "
            f"{' & '.join(example)}; membership must be unambiguous."
        )
    if level == "identity":
        people_in = {who for p in inside for who in pair_identities(p)}
        people_out = {who for p in outside for who in pair_identities(p)}
        shared = people_in & people_out
        if shared:
            raise FaceBoneError(
                f"{len(shared)} people appear in both member and non-member pairs, for "
                f"example {sorted(shared)[0]!r}; identity-level membership needs disjoint people."
            )
    leaked = {pair_key(p) for p in attacker} & {pair_key(p) for p in inside + outside}
    if leaked:
        log.warning(
            "%d attacker pairs are also candidates; shadows trained on them make the attack "
            "look at pairs it already knows, so results may be off",
            len(leaked),
        )
    return attacker, inside, outside


def run_membership_attacks(
    target: QueryFn,
    shadow_trainer: ShadowTrainer,
    attacker_pairs: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    level: str = "pair",
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit each attack on the attacker's pairs, score the candidates, and evaluate.

    `members` were in the target's training pairs and `nonmembers` were not. At "identity"
    level each person's score is the mean score of the candidate pairs that involve them;
    member people are those of member pairs, the rest come from non-member pairs, and the two
    sets must be disjoint. Shadows are shared between attacks that ask for the same ones.
    Returns `{"level": ..., "seed": ..., "attacks": {name: evaluate_scores(...)}}`, which is
    JSON-serialisable.
    """
    attacker, inside, outside = _checked_inputs(attacker_pairs, members, nonmembers, level, attacks)
    candidates = inside + outside
    is_member = np.r_[np.ones(len(inside), bool), np.zeros(len(outside), bool)]
    shadows = cached_shadow_trainer(shadow_trainer)
    results: dict[str, Any] = {}
    for name in tqdm(list(dict.fromkeys(attacks)), desc="attacks", disable=not progress):
        start = time.perf_counter()
        attack = create_attack(name, seed).fit(shadows, attacker)
        scores = attack.infer(target, candidates)
        if level == "pair":
            metrics = evaluate_scores(is_member, scores, attack.threshold_)
        else:
            people = identity_scores(candidates, scores)
            member_people = {who for p in inside for who in pair_identities(p)}
            names = sorted(people)
            metrics = evaluate_scores(
                np.array([who in member_people for who in names]),
                np.array([people[who] for who in names]),
                attack.threshold_,
            )
            # The cut was chosen on shadow pairs and is applied to people's mean pair scores.
            metrics["balanced_accuracy_threshold"] = "shadow-pair"
        results[name] = metrics
        log.info(
            "%s (%s level): AUC %.3f, TPR@1%%FPR %.3f, %.1f s",
            name,
            level,
            metrics["auc"],
            metrics["tpr_at_fpr"]["0.01"],
            time.perf_counter() - start,
        )
    return {"level": level, "seed": seed, "attacks": results}
