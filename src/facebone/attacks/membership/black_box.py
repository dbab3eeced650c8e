"""Learned black-box membership inference (Shokri et al. 2017) through ART's
`MembershipInferenceBlackBox`.

Shadow systems are trained on identity-disjoint halves of the attacker's pairs; ART's attack
model then learns, from the shadows' answers, to tell a pair the shadow was trained on from one
it was not. Its input is the system's answer as class probabilities `[1 - p, p]` with the
pair's true label (one-hot), exactly what ART uses for a two-class classifier.
"""

from __future__ import annotations

import numpy as np
import torch
from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
from art.estimators.classification import BlackBoxClassifier

from facebone.attacks.base import AttackError, QueryFn, ShadowTrainer, query
from facebone.attacks.membership.base import ShadowAttack, distinct, train_shadows
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels

MODELS = ("gb", "rf", "nn")


def _as_classes(p_same: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - p_same, p_same], axis=1)


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(2)[labels]


def _no_queries(x: np.ndarray) -> np.ndarray:
    # ART needs an estimator object, but every prediction is handed to it as `pred`; a call
    # here would mean ART queried a model we never meant it to query.
    raise AttackError("the ART attack model tried to query an estimator directly (a bug).")


class BlackBoxAttack(ShadowAttack):
    """Shadow-model attack whose attack model is ART's gradient boosting, random forest or MLP.

    Parameters
    ----------
    model : ART's attack model: "gb" (gradient boosting), "rf" (random forest), "nn" (MLP).
    n_shadows : number of shadow systems; the attack model trains on all their answers.
    seed : seeds the shadow splits, shadow training and the attack model.

    Fitted attributes: `attack_` (the fitted ART attack), `n_train_` (attack training rows),
    `threshold_` (0.5: the attack model's own decision).
    """

    name = "blackbox"

    def __init__(
        self, model: str = "gb", n_shadows: int = 4, seed: int = 0, shadow_size: int | None = None
    ) -> None:
        self.model = model
        self.n_shadows = n_shadows
        self.seed = seed
        self.shadow_size = shadow_size

    def _check_params(self) -> None:
        if self.model not in MODELS:
            raise AttackError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}.")
        super()._check_params()

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        members, nonmembers = [], []
        splits = self._shadow_splits(pairs)
        shadows = train_shadows(shadow_trainer, [(s_in, seed) for s_in, _, seed in splits])
        for (shadow_in, shadow_out, _), shadow in zip(splits, shadows, strict=True):
            shadow_in = distinct(shadow_in)
            members.append((query(shadow, shadow_in, "a shadow"), pair_labels(shadow_in)))
            nonmembers.append((query(shadow, shadow_out, "a shadow"), pair_labels(shadow_out)))
        p_in = np.concatenate([p for p, _ in members])
        y_in = np.concatenate([y for _, y in members])
        p_out = np.concatenate([p for p, _ in nonmembers])
        y_out = np.concatenate([y for _, y in nonmembers])
        estimator = BlackBoxClassifier(_no_queries, input_shape=(1,), nb_classes=2)
        attack = MembershipInferenceBlackBox(
            estimator, input_type="prediction", attack_model_type=self.model
        )
        if self.model != "nn":
            attack.attack_model.set_params(random_state=self.seed)
        # ART's MLP draws its initialisation and batch order from torch's global RNG; seed it
        # in a private scope so the caller's RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            attack.fit(
                # Only a row index: every prediction is given as `pred`, so ART uses x for
                # nothing but its row count and the estimator's input shape (1,).
                x=np.arange(len(p_in), dtype=np.float32)[:, None],
                y=_one_hot(y_in),
                test_x=np.arange(len(p_out), dtype=np.float32)[:, None],
                test_y=_one_hot(y_out),
                pred=_as_classes(p_in),
                test_pred=_as_classes(p_out),
            )
        self.attack_ = attack
        self.n_train_ = len(p_in) + len(p_out)
        self.threshold_ = 0.5

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        p_same = query(target, pairs)
        with torch.no_grad():
            scores = self.attack_.infer(
                np.arange(len(pairs), dtype=np.float32)[:, None],
                _one_hot(pair_labels(pairs)),
                pred=_as_classes(p_same),
                probabilities=True,
            )
        return np.asarray(scores, dtype=np.float64).reshape(-1)


for _model in MODELS:
    register_attack(f"blackbox-{_model}", model=_model)(BlackBoxAttack)
