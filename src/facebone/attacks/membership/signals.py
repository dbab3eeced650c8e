"""Membership signals computed once per target; score-based attacks are functions of them.

After ML Privacy Meter, whose `run_rmia(target_signals, ref_signals, ...)` reads signals that
were computed beforehand: a `SignalTable` holds every number a score-based membership attack
reads about one target. For the candidates, and for a population of pairs known to be
non-members of the target (the attacker's own), it holds the target's confidence in each
pair's true label, the same confidence under each shadow system (pairs x shadows), and which
shadow trained on which pair (the IN/OUT mask). An attack is then a function
`table -> scores` (`lira.lira_offline_scores`, `lira_online.lira_online_scores`,
`rmia.rmia_scores`), and a registered attack is a `SignalAttack` that names its function and
options: adding an attack is adding a function.

The table's shadows follow online LiRA's design: shadow k trains, the way the target did, on
the target's number of label-balanced pairs drawn from the candidates plus the attacker's pairs
(seeded by `(seed, k)`), so every pair is IN for some shadows and OUT for the others. They are
trained together (`train_many`), and a run's attacks that ask for the same shadows share one
table (`signal_table` over `SharedShadows`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from facebone.attacks.base import (
    AttackError,
    QueryFn,
    ShadowTrainer,
    check_pair_list,
    check_positive_int,
    logit_confidence,
    query,
    true_label_confidence,
)
from facebone.attacks.membership.base import (
    ShadowAttack,
    SharedShadows,
    balanced_sample,
    best_threshold,
    distinct,
    train_shadows,
)
from facebone.data.pairs import Pair, pair_labels

# Shadows that play the target in turn when an attack picks its threshold.
THRESHOLD_PSEUDO_TARGETS = 16


def _frozen(values: object, dtype: type) -> np.ndarray:
    """A read-only copy: a table is shared by every attack of a run, so none may edit it."""
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class PairSignals:
    """What the target and each shadow say about one list of pairs (N pairs, K shadows).

    `target_p` (N,) is the target's probability of each pair's true label (clipped away from
    0 and 1, `true_label_confidence`) and `target_phi` (N,) LiRA's logit of it,
    log(p / (1 - p)); `shadow_p` and `shadow_phi` (N, K) are the same under each shadow;
    `inside` (N, K) is True where shadow k trained on pair n.
    """

    pairs: tuple[Pair, ...]
    target_p: np.ndarray
    target_phi: np.ndarray
    shadow_p: np.ndarray
    shadow_phi: np.ndarray
    inside: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.pairs)
        for name in ("target_p", "target_phi", "shadow_p", "shadow_phi", "inside"):
            dtype = bool if name == "inside" else np.float64
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        k = self.shadow_p.shape[1] if self.shadow_p.ndim == 2 else -1
        shapes = (self.target_p.shape, self.target_phi.shape)
        if shapes != ((n,), (n,)) or k < 1:
            raise AttackError(f"signals of {n} pairs need target signals of shape ({n},).")
        if not self.shadow_p.shape == self.shadow_phi.shape == self.inside.shape == (n, k):
            raise AttackError(f"signals of {n} pairs need shadow signals of shape ({n}, K).")

    @property
    def n_shadows(self) -> int:
        return self.shadow_p.shape[1]

    def played_by(self, k: int, rows: np.ndarray | None = None) -> PairSignals:
        """These signals with shadow `k` as the target and the other shadows as shadows, on
        the pairs of `rows` (None: all)."""
        rows = np.arange(len(self.pairs)) if rows is None else rows
        others = np.arange(self.n_shadows) != k
        return PairSignals(
            tuple(self.pairs[i] for i in rows),
            self.shadow_p[rows, k],
            self.shadow_phi[rows, k],
            self.shadow_p[rows][:, others],
            self.shadow_phi[rows][:, others],
            self.inside[rows][:, others],
        )


@dataclass(frozen=True)
class SignalTable:
    """One target's signals: the `candidates`' and the `population`'s, under the same shadows.

    The population pairs are non-members of the target (the attacker's own pairs); RMIA
    compares each candidate with them. An attack that needs none (offline LiRA) leaves it
    None and asks the target nothing more than the candidates.
    """

    candidates: PairSignals
    population: PairSignals | None = None

    def __post_init__(self) -> None:
        if self.population is not None and self.population.n_shadows != self.n_shadows:
            raise AttackError("candidates and population must be measured by the same shadows.")

    @property
    def n_shadows(self) -> int:
        return self.candidates.n_shadows

    def played_by(self, k: int) -> SignalTable:
        """The table as it would be if shadow `k` were the target, scored against the other
        shadows: its candidates' membership is `candidates.inside[:, k]`. The population keeps
        the pairs shadow k did not train on (all of them where it trained on every one)."""
        if self.population is None:
            return SignalTable(self.candidates.played_by(k))
        outside = np.flatnonzero(~self.population.inside[:, k])
        rows = outside if len(outside) else None
        return SignalTable(self.candidates.played_by(k), self.population.played_by(k, rows))


def measure_signals(
    target: QueryFn,
    shadows: Sequence[QueryFn],
    pairs: Sequence[Pair],
    training_sets: Sequence[set[Pair] | frozenset[Pair]],
) -> PairSignals:
    """Ask the target and every shadow about `pairs` (once each); shadow k trained on
    `training_sets[k]`."""
    pairs = list(pairs)
    labels = pair_labels(pairs)
    answers = [query(target, pairs)] + [query(s, pairs, "a shadow") for s in shadows]
    p = [true_label_confidence(a, labels) for a in answers]
    phi = [logit_confidence(a, labels) for a in answers]
    inside = [[pair in chosen for chosen in training_sets] for pair in pairs]
    return PairSignals(
        tuple(pairs), p[0], phi[0], np.stack(p[1:], axis=1), np.stack(phi[1:], axis=1), inside
    )


def build_signal_table(
    shadow_trainer: ShadowTrainer,
    target: QueryFn,
    candidates: Sequence[Pair],
    attacker_pairs: Sequence[Pair],
    n_shadows: int,
    seed: int,
    shadow_size: int | None = None,
) -> SignalTable:
    """Train `n_shadows` shadows on draws from the candidates and the attacker's pairs and
    measure the target and every shadow on both; the attacker's pairs are the population.

    Shadow k trains on `shadow_size` label-balanced pairs (the target's training-set size;
    None: half of the candidates and attacker pairs together) drawn with the generator seeded
    by `(seed, k, 2)`, which also draws its training seed: a shadow depends only on `(seed, k)`
    and the pairs, so tables with more shadows extend those with fewer.
    """
    candidates = check_pair_list(candidates, "candidates")
    population = distinct(check_pair_list(attacker_pairs, "attacker_pairs"))
    check_positive_int(n_shadows, "n_shadows")
    check_positive_int(seed, "seed", minimum=0)
    pool = distinct(candidates + population)
    size = shadow_size or len(pool) // 2
    check_positive_int(size, "shadow_size", minimum=2)
    requests = []
    for k in range(n_shadows):
        rng = np.random.default_rng([seed, k, 2])
        chosen = balanced_sample(pool, size, rng)
        requests.append((chosen, int(rng.integers(2**31 - 1))))
    shadows = train_shadows(shadow_trainer, requests)
    training_sets = [frozenset(chosen) for chosen, _ in requests]
    return SignalTable(
        measure_signals(target, shadows, candidates, training_sets),
        measure_signals(target, shadows, population, training_sets),
    )


def signal_table(
    shadow_trainer: ShadowTrainer,
    target: QueryFn,
    candidates: Sequence[Pair],
    attacker_pairs: Sequence[Pair],
    n_shadows: int,
    seed: int,
    shadow_size: int | None = None,
) -> SignalTable:
    """`build_signal_table`, built once per target, pairs and shadow options where the
    trainer is `SharedShadows` (a run's trainer): the run's attacks share the table."""

    def build() -> SignalTable:
        return build_signal_table(
            shadow_trainer, target, candidates, attacker_pairs, n_shadows, seed, shadow_size
        )

    if not isinstance(shadow_trainer, SharedShadows):
        return build()
    key = (
        "signal-table",
        target,
        tuple(candidates),
        tuple(attacker_pairs),
        n_shadows,
        seed,
        shadow_size,
    )
    return shadow_trainer.remembered(key, build)


def shadow_threshold(
    score: Callable[[SignalTable], np.ndarray],
    table: SignalTable,
    pseudo_targets: int = THRESHOLD_PSEUDO_TARGETS,
) -> float:
    """The cut (member iff score >= cut) with the best balanced accuracy when each of the
    first `pseudo_targets` shadows plays the target, scored against the others: chosen on
    shadow data only, never on the target's answers. 0.0 where no shadow trained on any
    candidate (or on all of them)."""
    scores, truth = [], []
    for k in range(min(pseudo_targets, table.n_shadows)):
        scores.append(score(table.played_by(k)))
        truth.append(table.candidates.inside[:, k])
    truth_all = np.concatenate(truth)
    if truth_all.all() or not truth_all.any():
        return 0.0
    return best_threshold(truth_all, np.concatenate(scores))


class SignalAttack(ShadowAttack):
    """Base class of the attacks that are a function of the signal table: a subclass stores
    its options (`n_shadows`, `seed`, `shadow_size` and its own) and gives `_scores(table)`.

    `fit` only keeps the attacker's pairs and the trainer; the table is built in `infer`,
    once the candidates are known, and shared with every attack of the run that asks for the
    same shadows. `threshold_` is chosen there too, on shadow data only (`shadow_threshold`).
    """

    min_shadows = 4

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        self.trainer_ = shadow_trainer
        self.attacker_pairs_ = pairs
        self.threshold_ = 0.0  # replaced in infer, once shadows exist

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        table = signal_table(
            self.trainer_,
            target,
            pairs,
            self.attacker_pairs_,
            self.n_shadows,
            self.seed,
            self.shadow_size,
        )
        self.threshold_ = shadow_threshold(self._scores, table)
        return self._scores(table)

    @abstractmethod
    def _scores(self, table: SignalTable) -> np.ndarray:
        """Membership score of each candidate of `table` (higher = more likely a member)."""
