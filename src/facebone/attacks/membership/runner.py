"""Run several membership attacks against one target and evaluate them on known members and
non-members, at the level of pairs or of people."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from facebone.attacks.base import (
    QueryFn,
    ShadowTrainer,
    check_pair_list,
    check_positive_int,
    pair_identities,
    pair_key,
)
from facebone.attacks.membership.base import (
    LEVELS,
    MAX_QUERIES,
    answers_vary,
    cached_shadow_trainer,
    identity_scores,
    repeated_query,
    repeating_shadow_trainer,
)
from facebone.attacks.membership.metrics import evaluate_scores
from facebone.attacks.membership.parameter import PairScores
from facebone.attacks.registry import (
    attack_class,
    check_attack_names,
    create_attack,
    list_attacks,
)
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError

log = logging.getLogger(__name__)

# Every attack that needs only the black box and shadows; the parameter attack also needs the
# target's pair scores (`pair_scores`) and runs when named.
DEFAULT_ATTACKS = tuple(
    name
    for name in list_attacks(family="membership")
    if not getattr(attack_class(name), "needs_pair_scores", False)
)
# Queries per pair when the target's answers vary from query to query (a backbone drawn per
# query): averaging 16 answers leaves about a quarter of the single-answer noise.
ADAPTIVE_QUERIES = 16


def choose_queries(target: QueryFn, probe: Sequence[Pair], queries: int | None) -> int:
    """`queries` as given, or (None) `ADAPTIVE_QUERIES` when two answers to the same pairs
    differ and 1 when the target always answers alike."""
    if queries is not None:
        check_positive_int(queries, "queries", maximum=MAX_QUERIES)
        return queries
    return ADAPTIVE_QUERIES if answers_vary(target, probe) else 1


def _checked_inputs(
    attacker_pairs: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    levels: Sequence[str],
    attacks: Sequence[str],
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    if isinstance(levels, str):
        raise FaceBoneError("levels must be a list of level names, not one string.")
    if not levels:
        raise FaceBoneError(f"no level chosen; choose from: {', '.join(LEVELS)}.")
    for level in levels:
        if level not in LEVELS:
            raise FaceBoneError(f"level must be one of {', '.join(LEVELS)}, got {level!r}.")
    check_attack_names(attacks, family="membership")
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
    if "identity" in levels:
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


def _identity_rows(
    inside: list[Pair], outside: list[Pair], identity_nonmembers: Sequence[Pair] | None
) -> tuple[list[Pair], np.ndarray]:
    """The candidate pairs whose people are the identity level's candidates, and their rows
    among `inside + outside`: every member pair, and the `identity_nonmembers` (default all
    non-member pairs)."""
    if identity_nonmembers is None:
        return inside + outside, np.arange(len(inside) + len(outside), dtype=np.int64)
    row_of = {pair_key(p): len(inside) + i for i, p in enumerate(outside)}
    chosen = list(identity_nonmembers)
    if any(pair_key(p) not in row_of for p in chosen):
        raise FaceBoneError("identity_nonmembers must be a subset of nonmembers")
    rows = np.r_[np.arange(len(inside)), [row_of[pair_key(p)] for p in chosen]]
    return inside + chosen, rows.astype(np.int64)


def evaluate_membership_attacks(
    target: QueryFn,
    shadow_trainer: ShadowTrainer,
    attacker_pairs: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    levels: Sequence[str] = ("pair",),
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    seed: int = 0,
    n_shadows: int | None = None,
    identity_nonmembers: Sequence[Pair] | None = None,
    on_attack: Callable[[str], None] | None = None,
    progress: bool = False,
    log_level: int = logging.DEBUG,
    queries: int | None = None,
    shadow_size: int | None = None,
    pair_scores: PairScores | None = None,
) -> tuple[dict[str, dict[str, dict]], dict[str, float]]:
    """Fit each attack once on the attacker's pairs, score the candidates once, and evaluate
    the scores at each of `levels`. Returns `({level: {attack: metrics}}, {attack: seconds})`.

    `members` were in the target's training pairs and `nonmembers` were not. At "identity"
    level a person's score is the mean score of the candidate pairs that involve them, and the
    attack's cut (chosen on shadow pairs) is applied to it; member people are those of member
    pairs, and they must be disjoint from the people of non-member pairs.
    `identity_nonmembers` (a subset of `nonmembers`; default all) are the non-member pairs
    whose people are the identity level's non-members: drawn like the members, they give
    non-member people as many pairs each as member people have. A mean over fewer pairs
    spreads wider, so with unequal counts the side with fewer pairs per person fills both
    tails of the scores, and TPR at low FPR measures that, not memory.

    `n_shadows` (None: each attack's default) replaces the shadow count of every attack that
    trains shadows; `shadow_size` (the target's training-set size, which the attacker knows)
    sets how many pairs each shadow trains on. Shadows, and the signal table the score-based
    attacks read (`signals.py`), are shared between attacks that ask for the same ones.
    `queries` is how often each pair is asked (both image orders in turn, answers averaged),
    of the target and of every shadow alike; None: 16 if the target's answers vary, else 1
    (`choose_queries`). Each attack's metrics carry `shadows` and `queries`. `on_attack(name)`
    is called as each attack starts; each attack's figures are logged at `log_level` as it
    ends. `pair_scores` (the target's per-backbone pair
    scores, `system_target.system_pair_scores`) goes to the attacks that read the target's
    calibration (`parameter`).
    """
    attacker, inside, outside = _checked_inputs(
        attacker_pairs, members, nonmembers, levels, attacks
    )
    identity_pairs, identity_rows = _identity_rows(inside, outside, identity_nonmembers)
    candidates = inside + outside
    is_member = np.r_[np.ones(len(inside), bool), np.zeros(len(outside), bool)]
    member_people = {who for p in inside for who in pair_identities(p)}
    repeats = choose_queries(target, candidates[:64], queries)
    asked = repeated_query(target, repeats)
    shadows = cached_shadow_trainer(repeating_shadow_trainer(shadow_trainer, repeats))
    results: dict[str, dict[str, dict]] = {level: {} for level in levels}
    seconds: dict[str, float] = {}
    for name in tqdm(list(dict.fromkeys(attacks)), desc="attacks", disable=not progress):
        if on_attack is not None:
            on_attack(name)
        start = time.perf_counter()
        attack = create_attack(name, seed)
        if n_shadows is not None and hasattr(attack, "n_shadows"):
            attack.n_shadows = n_shadows
        if hasattr(attack, "shadow_size"):
            attack.shadow_size = shadow_size
        if hasattr(attack, "pair_scores"):
            attack.pair_scores = pair_scores
        attack.fit(shadows, attacker)
        scores = attack.infer(asked, candidates)
        for level in levels:
            if level == "pair":
                metrics = evaluate_scores(is_member, scores, attack.threshold_)
            else:
                people = identity_scores(identity_pairs, scores[identity_rows])
                names = sorted(people)
                metrics = evaluate_scores(
                    np.array([who in member_people for who in names]),
                    np.array([people[who] for who in names]),
                    attack.threshold_,
                )
                # The cut was chosen on shadow pairs and is applied to people's mean pair scores.
                metrics["balanced_accuracy_threshold"] = "shadow-pair"
            metrics["shadows"] = getattr(attack, "n_shadows", 0)
            metrics["queries"] = repeats
            results[level][name] = metrics
        seconds[name] = time.perf_counter() - start
        for level in levels:
            log.log(
                log_level,
                "%s (%s level): AUC %.3f, TPR@1%%FPR %.3f, %.1f s",
                name,
                level,
                results[level][name]["auc"],
                results[level][name]["tpr_at_fpr"]["0.01"],
                seconds[name],
            )
    return results, seconds


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
    n_shadows: int | None = None,
    queries: int | None = None,
    shadow_size: int | None = None,
    pair_scores: PairScores | None = None,
) -> dict[str, Any]:
    """Fit each attack on the attacker's pairs, score the candidates, and evaluate at `level`
    ("pair" or "identity"; see `evaluate_membership_attacks` for the other options).

    Returns `{"level": ..., "seed": ..., "attacks": {name: evaluate_scores(...)}}`, which is
    JSON-serialisable.
    """
    results, _ = evaluate_membership_attacks(
        target,
        shadow_trainer,
        attacker_pairs,
        members,
        nonmembers,
        levels=(level,),
        attacks=attacks,
        seed=seed,
        progress=progress,
        log_level=logging.INFO,
        n_shadows=n_shadows,
        queries=queries,
        shadow_size=shadow_size,
        pair_scores=pair_scores,
    )
    return {"level": level, "seed": seed, "attacks": results[level]}
