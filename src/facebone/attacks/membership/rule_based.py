"""Rule-based membership inference through ART's `MembershipInferenceBlackBoxRuleBased`:
a pair is called a member iff the target decides it correctly (Yeom et al. 2018, the "gap
attack" of Choquette-Choo et al. 2021, which ART also exports as `LabelOnlyGapAttack`).

It needs no shadows. Its score is 0 or 1, so its ROC has a single corner and its advantage is
the target's train-test accuracy gap.
"""

from __future__ import annotations

import numpy as np
from art.attacks.inference.membership_inference import MembershipInferenceBlackBoxRuleBased
from art.estimators.classification import BlackBoxClassifier

from facebone.attacks.base import QueryFn, ShadowTrainer, query
from facebone.attacks.membership.base import MembershipAttack
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels


@register_attack("rule-based")
class RuleBasedAttack(MembershipAttack):
    """Member iff the target's decision (P(same) >= 0.5) matches the pair's label.

    `fit` trains nothing (the rule needs no shadow data) and only checks its inputs, so the
    attack is interchangeable with the others. Fitted attribute: `threshold_` (0.5).
    """

    name = "rule-based"

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        self.threshold_ = 0.5

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        def predict(x: np.ndarray) -> np.ndarray:
            # ART's estimator input is the row index into `pairs`; the target sees the pairs.
            chosen = [pairs[int(i)] for i in np.rint(np.asarray(x).reshape(-1))]
            p_same = query(target, chosen)
            return np.stack([1.0 - p_same, p_same], axis=1)

        classifier = BlackBoxClassifier(predict, input_shape=(1,), nb_classes=2)
        attack = MembershipInferenceBlackBoxRuleBased(classifier)
        # One-hot labels: ART counts the classes present in y, which fails when every
        # candidate has the same label and y is given as integers.
        y = np.eye(2)[pair_labels(pairs)]
        x = np.arange(len(pairs), dtype=np.float32)[:, None]
        return np.asarray(attack.infer(x, y), dtype=np.float64).reshape(-1)
