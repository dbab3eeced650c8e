"""What every membership inference attack shares: the black-box target, shadow training, the
attacker's shadow splits, and identity-level aggregation.

The target is a black box that answers a same-person probability for each pair of images
(`QueryFn`); label-only attacks threshold it at 0.5 and look at the decision only. Shadow
models are trained "the way the target was trained" by a `ShadowTrainer` that the caller
provides: `(pairs, seed) -> QueryFn` of a freshly trained system. Attacks follow the
scikit-learn contract: the constructor stores options, `fit(shadow_trainer, attacker_pairs)`
learns from the attacker's own pairs only and returns `self`, `infer(target, candidates)` gives
one membership score per candidate (higher = more likely a member).
"""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from facebone.attacks.base import (
    Attack,
    AttackError,
    AttackNotFittedError,
    QueryFn,
    ShadowTrainer,
    check_pair_list,
    check_positive_int,
    identity_of,
    pair_identities,
    pair_key,
    query,
)
from facebone.data.pairs import Pair

T = TypeVar("T")


def train_shadows(
    trainer: ShadowTrainer, requests: Sequence[tuple[Sequence[Pair], int]]
) -> list[QueryFn]:
    """Train one shadow per `(pairs, seed)`: all at once through `trainer.train_many` where
    the trainer has it (batched training), else one after the other."""
    train_many = getattr(trainer, "train_many", None)
    if train_many is not None:
        return list(train_many([(list(p), int(s)) for p, s in requests]))
    return [trainer(list(p), int(s)) for p, s in requests]


class SharedShadows:
    """Remember every shadow trained: attacks that ask for the same pairs and seed share it.

    The black-box and label-only attacks use the same shadow splits for the same seed, so a run
    of all attacks trains those shadows once; misses are trained together (`train_many`).
    What is computed from the shadows (a signal table, `signals.signal_table`) is remembered
    too (`remembered`).
    """

    def __init__(self, trainer: ShadowTrainer) -> None:
        self.trainer = trainer
        self._trained: dict[tuple[tuple[Pair, ...], int], QueryFn] = {}
        self._made: dict[Hashable, Any] = {}

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        keys = [(tuple(p), int(s)) for p, s in requests]
        missing = list(dict.fromkeys(k for k in keys if k not in self._trained))
        if missing:
            trained = train_shadows(self.trainer, [(list(p), s) for p, s in missing])
            self._trained.update(zip(missing, trained, strict=True))
        return [self._trained[k] for k in keys]

    def remembered(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, made once per `key` for as long as these shadows live."""
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]


def cached_shadow_trainer(trainer: ShadowTrainer) -> SharedShadows:
    """`trainer` with every shadow it trains remembered (`SharedShadows`)."""
    return trainer if isinstance(trainer, SharedShadows) else SharedShadows(trainer)


class RepeatingShadows:
    """Shadows asked the way the target is asked (`repeated_query` with `repeats`), so their
    answers are distributed like the target's."""

    def __init__(self, trainer: ShadowTrainer, repeats: int) -> None:
        self.trainer = trainer
        self.repeats = repeats

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        trained = train_shadows(self.trainer, requests)
        return [repeated_query(fn, self.repeats) for fn in trained]


def repeating_shadow_trainer(trainer: ShadowTrainer, repeats: int) -> ShadowTrainer:
    return trainer if repeats == 1 else RepeatingShadows(trainer, repeats)


def swapped(pairs: Sequence[Pair]) -> list[Pair]:
    """The same pairs with their images in the other order."""
    return [Pair(p.image2, p.image1, p.label) for p in pairs]


def repeated_query(fn: QueryFn, repeats: int) -> QueryFn:
    """The adaptive attacker's view of a system whose answers vary from query to query (a
    backbone drawn per query): ask each pair `repeats` times, alternating the image order,
    and average. One query keeps the system as it is."""
    if repeats == 1:
        return fn

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        pairs = list(pairs)
        both = (pairs, swapped(pairs))
        # One call for all repeats: the per-call work (embedding look-ups) is paid once.
        asked = [pair for k in range(repeats) for pair in both[k % 2]]
        answers = query(fn, asked).reshape(repeats, len(pairs))
        return answers.mean(axis=0)

    return ask


def answers_vary(fn: QueryFn, pairs: Sequence[Pair]) -> bool:
    """Whether asking the same pairs twice (in both orders) gives different answers."""
    pairs = list(pairs)
    first = query(fn, pairs)
    return bool(np.any(first != query(fn, pairs)) or np.any(first != query(fn, swapped(pairs))))


def balanced_sample(pairs: Sequence[Pair], size: int, rng: np.random.Generator) -> list[Pair]:
    """`size` pairs, half same-person and half different-person, drawn without replacement
    where each kind has enough pairs and with replacement where it has too few (so a shadow
    trains on as many pairs, and as balanced, as the target did)."""
    chosen: list[Pair] = []
    for label, count in ((1, size // 2), (0, size - size // 2)):
        pool = [p for p in pairs if p.label == label]
        if not pool:
            raise AttackError(f"no {'same' if label else 'different'}-person pairs to draw from.")
        picks = rng.choice(len(pool), count, replace=count > len(pool))
        chosen.extend(pool[i] for i in sorted(picks))
    return chosen


def split_by_identity(pairs: Sequence[Pair], rng: np.random.Generator) -> tuple[list, list]:
    """Shadow-in and shadow-out halves whose identities are disjoint, like target members and
    non-members in the FaceBone protocol.

    Identities are dealt at random to the two halves; a pair goes to the half that holds both
    of its people. A different-person pair that straddles the halves is re-paired by the
    attacker, who owns these images: its image on a randomly chosen side is matched with a
    random image of another person of that side, so both halves keep the label balance of the
    input. When the halves cannot both hold same- and different-person pairs (too few
    identities), the split falls back to a random half of the pairs.
    """
    identities = sorted({who for pair in pairs for who in pair_identities(pair)})
    order = rng.permutation(len(identities))
    side_of = {identities[i]: int(rank < len(identities) // 2) for rank, i in enumerate(order)}
    halves: list[list[Pair]] = [[], []]
    straddling: list[Pair] = []
    for pair in pairs:
        sides = {side_of[who] for who in pair_identities(pair)}
        if len(sides) == 1:
            halves[sides.pop()].append(pair)
        else:
            straddling.append(pair)
    images: list[dict[str, list[str]]] = [defaultdict(list), defaultdict(list)]
    for pair in pairs:
        for image in (pair.image1, pair.image2):
            pool = images[side_of[identity_of(image)]][identity_of(image)]
            if image not in pool:
                pool.append(image)
    seen = [{pair_key(p) for p in half} for half in halves]
    for pair in straddling:
        side = int(rng.integers(2))
        keep = pair.image1 if side_of[identity_of(pair.image1)] == side else pair.image2
        others = [
            image
            for who, pool in sorted(images[side].items())
            if who != identity_of(keep)
            for image in pool
        ]
        if not others:
            continue
        partner = others[int(rng.integers(len(others)))]
        new = Pair(keep, partner, 0)
        if pair_key(new) not in seen[side]:
            seen[side].add(pair_key(new))
            halves[side].append(new)
    if all(len({p.label for p in half}) == 2 for half in halves):
        return halves[0], halves[1]
    return split_at_random(pairs, rng)


def split_at_random(pairs: Sequence[Pair], rng: np.random.Generator) -> tuple[list, list]:
    """A random half of the pairs and the rest."""
    order = rng.permutation(len(pairs))
    half = len(pairs) // 2
    return [pairs[i] for i in sorted(order[:half])], [pairs[i] for i in sorted(order[half:])]


def shadow_splits(
    pairs: Sequence[Pair], n_shadows: int, seed: int, size: int | None = None
) -> list[tuple[list[Pair], list[Pair], int]]:
    """`(shadow_in, shadow_out, training_seed)` for each shadow; shadow k depends only on
    `(seed, k)`, so attacks with the same seed share their first shadows.

    With `size` (the target's training-set size) each shadow trains on `size` label-balanced
    pairs drawn from its half (`balanced_sample`), and its out half is cut to equal numbers
    of same- and different-person pairs, like the target's members and non-members.
    """
    splits = []
    for k in range(n_shadows):
        rng = np.random.default_rng([seed, k])
        shadow_in, shadow_out = split_by_identity(pairs, rng)
        training_seed = int(rng.integers(2**31 - 1))
        if size is not None:
            shadow_in = balanced_sample(shadow_in, size, rng)
            kinds = min(sum(p.label for p in shadow_out), sum(1 - p.label for p in shadow_out))
            shadow_out = balanced_sample(shadow_out, 2 * kinds, rng) if kinds else shadow_out
        splits.append((shadow_in, shadow_out, training_seed))
    return splits


def distinct(pairs: Sequence[Pair]) -> list[Pair]:
    """The pairs with repeats dropped (a shadow may train on a pair twice), in order."""
    return list(dict.fromkeys(pairs))


def best_threshold(is_member: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (member iff score >= threshold) with the best balanced accuracy."""
    is_member = np.asarray(is_member, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if is_member.all() or not is_member.any():
        raise AttackError("choosing a threshold needs both members and non-members.")
    candidates = np.unique(scores)
    n_in, n_out = is_member.sum(), (~is_member).sum()
    # Sorted scores: member iff score >= candidates[i] for each i, counted with searchsorted.
    member_scores = np.sort(scores[is_member])
    other_scores = np.sort(scores[~is_member])
    tpr = 1.0 - np.searchsorted(member_scores, candidates, side="left") / n_in
    fpr = 1.0 - np.searchsorted(other_scores, candidates, side="left") / n_out
    balanced = 0.5 * (tpr + 1.0 - fpr)
    return float(candidates[int(np.argmax(balanced))])


def identity_scores(
    pairs: Sequence[Pair], scores: np.ndarray, aggregate: str = "mean"
) -> dict[str, float]:
    """One score per person: the mean (or max) score of the candidate pairs that involve them."""
    if aggregate not in ("mean", "max"):
        raise AttackError(f"aggregate must be 'mean' or 'max', got {aggregate!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pairs),):
        raise AttackError(f"give one score per pair: {len(pairs)} pairs, {scores.shape} scores.")
    grouped: dict[str, list[float]] = defaultdict(list)
    for pair, score in zip(pairs, scores, strict=True):
        for who in sorted(pair_identities(pair)):
            grouped[who].append(float(score))
    reduce = np.mean if aggregate == "mean" else np.max
    return {who: float(reduce(values)) for who, values in sorted(grouped.items())}


# The levels membership is asked at: was this pair in training, or this person's photos.
LEVELS = ("pair", "identity")
# The false-positive rates whose true-positive rate every attack reports (Carlini et al.).
LOW_FPRS = (0.01, 0.001)

# Upper bounds, checked before any work: each shadow is a trained system and each query one
# more answer per candidate, so a mistyped 1000000000 would ask for hundreds of GiB.
MAX_SHADOWS = 1024
MAX_QUERIES = 1024


class MembershipAttack(Attack):
    """Base class: subclasses set `name`, implement `_fit` and `_infer`, and set `threshold_`
    (the member-iff-score->=threshold cut the attack would use, chosen without target data)."""

    family: ClassVar[str] = "membership"

    def fit(self, shadow_trainer: ShadowTrainer, attacker_pairs: Sequence[Pair]):
        """Train shadows and the attack model on the attacker's pairs; return `self`."""
        if not callable(shadow_trainer):
            raise AttackError("shadow_trainer must be a function (pairs, seed) -> query function.")
        pairs = check_pair_list(attacker_pairs, "attacker_pairs")
        if len({p.label for p in pairs}) < 2:
            raise AttackError(
                "attacker_pairs must hold both same-person and different-person pairs."
            )
        self._check_params()
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)
        self._fit(shadow_trainer, pairs)
        self.fitted_ = True
        return self

    def infer(self, target: QueryFn, candidates: Sequence[Pair]) -> np.ndarray:
        """Membership score of each candidate pair (higher = more likely a member), shape (N,)."""
        if not getattr(self, "fitted_", False):
            raise AttackNotFittedError(
                f"This {self.name!r} attack is not fitted yet; call fit(shadow_trainer, "
                "attacker_pairs) first."
            )
        if not callable(target):
            raise AttackError("target must be a query function: pairs -> P(same) per pair.")
        pairs = check_pair_list(candidates, "candidates")
        scores = np.asarray(self._infer(target, pairs), dtype=np.float64).reshape(-1)
        if scores.shape != (len(pairs),) or not np.all(np.isfinite(scores)):
            raise AttackError(f"the {self.name!r} attack produced invalid scores (a bug).")
        return scores

    def _check_params(self) -> None:
        """Validate constructor options (called by `fit`)."""

    @abstractmethod
    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None: ...

    @abstractmethod
    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray: ...


class ShadowAttack(MembershipAttack):
    """Base class of the attacks that train `n_shadows` shadow systems seeded by `seed`, each
    on `shadow_size` pairs (None: as many as the split gives); subclasses store the three in
    their constructor and may raise `min_shadows` or `max_shadows` (cheap shadows)."""

    min_shadows: ClassVar[int] = 1
    max_shadows: ClassVar[int] = MAX_SHADOWS
    n_shadows: int
    seed: int
    shadow_size: int | None

    def _check_params(self) -> None:
        check_positive_int(
            self.n_shadows, "n_shadows", minimum=self.min_shadows, maximum=self.max_shadows
        )
        check_positive_int(self.seed, "seed", minimum=0)
        if self.shadow_size is not None:
            check_positive_int(self.shadow_size, "shadow_size", minimum=2)

    def _shadow_splits(self, pairs: list[Pair]) -> list[tuple[list[Pair], list[Pair], int]]:
        return shadow_splits(pairs, self.n_shadows, self.seed, self.shadow_size)
