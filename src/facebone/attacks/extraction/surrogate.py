"""Model extraction of a face verifier: copy the black box from its answers (after Copycat CNN,
Correia-Silva et al. 2018, and Knockoff Nets, Orekondy et al. 2019).

The attacker owns face photos of its own people, embeds them with a public backbone, asks the
target "same person?" for pairs of them, and trains a surrogate pair predictor on the answers.
ART's `CopycatCNN` and `KnockoffNets` are not used: they steal classifiers over single inputs
(`classifier.predict(x)` over an array of inputs, one-hot labels, a thieved ART classifier
trained on them), whereas the target here is a verifier over two images that answers one
probability, and the surrogate is a FaceBone predictor trained on those probabilities as soft
targets (knowledge distillation keeps more of the target than Copycat's hard labels).

The surrogate is also a reference model for membership: a pair the target trained on gets an
answer more confident than the copy, which never saw it, gives (the difficulty calibration of
Watson et al., ICLR 2022). `membership_scores` gives that score. `CopiedShadowTrainer` makes
copies the shadows of the membership attacks (LiRA and the others), so the attacker needs the
target's answers instead of its training recipe.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from facebone.attacks.base import (
    Attack,
    AttackError,
    AttackNotFittedError,
    QueryFn,
    check_pair_list,
    check_positive_int,
    identity_of,
    logit_confidence,
    pair_key,
    query,
)
from facebone.attacks.embedding_target import embed_pairs, embedding_query_fn
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels
from facebone.metrics import verification_metrics
from facebone.predictors import NNPredictor


@register_attack("surrogate")
class ModelExtraction(Attack):
    """Train a surrogate verifier on `budget` answers of the target.

    Parameters
    ----------
    budget : queries sent to the target, each a distinct pair of the attacker's images.
    same_share : share of the queries that pair two photos of one person (the attacker knows
        its own people; without such pairs the copy would rarely see a "same" answer). Where
        the attacker has fewer such pairs, all are asked and the rest are different-person.
    soft : train on the target's probabilities (True) or on its 0.5-thresholded decisions.
    predictor_params : options of the surrogate's nn predictor (`NNPredictor`).
    seed : seeds the query draw and the surrogate's training.

    Fitted attributes: `queries_` (the pairs asked, labelled with the target's decision),
    `answers_` (its probabilities), `surrogate_` (the fitted predictor).
    """

    family: ClassVar[str] = "extraction"

    def __init__(
        self,
        budget: int = 1000,
        same_share: float = 0.5,
        soft: bool = True,
        predictor_params: dict | None = None,
        seed: int = 0,
    ) -> None:
        self.budget = budget
        self.same_share = same_share
        self.soft = soft
        self.predictor_params = predictor_params
        self.seed = seed

    def fit(
        self,
        target: QueryFn,
        embeddings: Mapping[str, np.ndarray],
        attacker_pairs: Sequence[Pair],
    ) -> ModelExtraction:
        """Query the target with pairs of the images of `attacker_pairs` and train the
        surrogate on `embeddings` (the attacker's backbone, {image: embedding}); returns self."""
        check_positive_int(self.budget, "budget", minimum=2)
        check_positive_int(self.seed, "seed", minimum=0)
        if not 0.0 <= self.same_share <= 1.0:
            raise AttackError(f"same_share must be in [0, 1], got {self.same_share!r}.")
        pairs = check_pair_list(attacker_pairs, "attacker_pairs")
        rng = np.random.default_rng([self.seed, 3])
        asked = query_pairs(pairs, self.budget, self.same_share, rng)
        answers = query(target, asked)
        decisions = (answers >= 0.5).astype(np.int64)
        if len(set(decisions.tolist())) < 2:
            raise AttackError(
                f"the target answered every one of {len(asked)} queries "
                f"{'same' if decisions[0] else 'different'}; a surrogate needs both answers "
                "(raise the budget)."
            )
        targets = answers if self.soft else decisions
        self.surrogate_ = train_copies(
            embeddings, [(asked, targets, self.seed)], self.predictor_params
        )[0]
        self.queries_ = [
            Pair(p.image1, p.image2, int(d)) for p, d in zip(asked, decisions, strict=True)
        ]
        self.answers_ = answers
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "surrogate_"):
            raise AttackNotFittedError(
                "this extraction is not fitted yet; call fit(target, embeddings, attacker_pairs)."
            )

    def surrogate_query_fn(self, embeddings: Mapping[str, np.ndarray]) -> QueryFn:
        """The stolen copy as a black box like the target: pairs in, P(same) out."""
        self._check_fitted()
        return embedding_query_fn(self.surrogate_, embeddings)

    def evaluate(
        self, target: QueryFn, embeddings: Mapping[str, np.ndarray], pairs: Sequence[Pair]
    ) -> dict[str, Any]:
        """On labelled `pairs` the attacker never asked: `fidelity` (share of pairs where the
        copy decides as the target), `accuracy` and `auc` of the copy against the true labels,
        and the target's own `target_accuracy` for comparison."""
        self._check_fitted()
        pairs = check_pair_list(pairs, "pairs")
        asked = {pair_key(p) for p in self.queries_}
        if any(pair_key(p) in asked for p in pairs):
            raise AttackError("evaluation pairs must not be among the pairs the attacker asked.")
        truth = pair_labels(pairs)
        copied = query(self.surrogate_query_fn(embeddings), pairs, "the surrogate")
        original = query(target, pairs)
        own = verification_metrics(truth, copied)
        return {
            "fidelity": float(np.mean((copied >= 0.5) == (original >= 0.5))),
            "accuracy": own["accuracy"],
            "auc": own["auc"],
            "target_accuracy": verification_metrics(truth, original)["accuracy"],
            "n_pairs": len(pairs),
        }

    def membership_scores(
        self,
        target_p_same: np.ndarray,
        embeddings: Mapping[str, np.ndarray],
        candidates: Sequence[Pair],
    ) -> np.ndarray:
        """Membership score of each candidate from the target's answers to them
        (`target_p_same`; the caller decides how to ask, e.g. repeatedly for a system whose
        answers vary): the target's logit confidence in the true label minus the copy's
        (higher = more likely a training pair of the target)."""
        pairs = check_pair_list(candidates, "candidates")
        labels = pair_labels(pairs)
        target_p_same = np.asarray(target_p_same, dtype=np.float64)
        if target_p_same.shape != (len(pairs),):
            raise AttackError(
                f"give one target answer per candidate: {len(pairs)} candidates, "
                f"{target_p_same.shape} answers."
            )
        copied = query(self.surrogate_query_fn(embeddings), pairs, "the surrogate")
        return logit_confidence(target_p_same, labels) - logit_confidence(copied, labels)


class CopiedShadowTrainer:
    """Shadow systems that copy the target instead of being trained like it: each learns the
    target's answers to its pairs (soft targets, one query per distinct pair) with an nn on the
    attacker's embeddings. A `ShadowTrainer` for the membership attacks."""

    def __init__(
        self,
        target: QueryFn,
        embeddings: Mapping[str, np.ndarray],
        predictor_params: dict | None = None,
    ) -> None:
        self.target = target
        self.embeddings = embeddings
        self.predictor_params = predictor_params

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        distinct = list(dict.fromkeys((p.image1, p.image2) for pairs, _ in requests for p in pairs))
        answers = query(self.target, [Pair(a, b, 0) for a, b in distinct])
        answer_of = dict(zip(distinct, answers, strict=True))
        datasets = [
            (list(pairs), np.array([answer_of[(p.image1, p.image2)] for p in pairs]), seed)
            for pairs, seed in requests
        ]
        copies = train_copies(self.embeddings, datasets, self.predictor_params)
        return [embedding_query_fn(copy, self.embeddings) for copy in copies]


def train_copies(
    embeddings: Mapping[str, np.ndarray],
    datasets: Sequence[tuple[Sequence[Pair], np.ndarray, int]],
    predictor_params: dict | None = None,
) -> list[NNPredictor]:
    """One nn per `(pairs, target answers, seed)`, trained together (`NNPredictor.fit_many`)."""
    predictors, rows = [], []
    for pairs, answers, seed in datasets:
        predictors.append(NNPredictor(**{**(predictor_params or {}), "seed": seed}))
        e1, e2, _ = embed_pairs(embeddings, pairs)
        rows.append((e1, e2, answers, None))
    return NNPredictor.fit_many(predictors, rows)


def query_pairs(
    pairs: Sequence[Pair], budget: int, same_share: float, rng: np.random.Generator
) -> list[Pair]:
    """`budget` distinct pairs of the images in `pairs` (labelled by person), about
    `same_share` of them same-person; fewer only if the images cannot make that many."""
    people: dict[str, list[str]] = {}
    for image in dict.fromkeys(p for pair in pairs for p in (pair.image1, pair.image2)):
        people.setdefault(identity_of(image), []).append(image)
    same = [Pair(a, b, 1) for pool in people.values() for a, b in itertools.combinations(pool, 2)]
    n_same = min(len(same), round(budget * same_share))
    chosen = [same[i] for i in sorted(rng.choice(len(same), n_same, replace=False))]
    images = [image for pool in people.values() for image in pool]
    seen = {pair_key(p) for p in chosen}
    n_different = len(people) * (len(people) - 1) // 2  # at least this many exist
    wanted = min(budget, n_same + n_different)
    while len(chosen) < wanted:
        a, b = (images[int(i)] for i in rng.integers(len(images), size=2))
        if identity_of(a) != identity_of(b) and pair_key(Pair(a, b, 0)) not in seen:
            seen.add(pair_key(Pair(a, b, 0)))
            chosen.append(Pair(a, b, 0))
    return [chosen[i] for i in rng.permutation(len(chosen))]
