"""Membership inference attacks on face-verification systems.

Every attack is one class with the scikit-learn contract (`fit(shadow_trainer, attacker_pairs)`,
`infer(target, candidates)`), in one module each that registers it with
`@register_attack(name)` (registry.py); `create_attack(name, seed)` builds one by its name
and `run_membership_attacks` runs several and evaluates them at pair or identity level
(`runner.evaluate_membership_attacks`, which the experiments use, evaluates one scoring at
both levels and can override the shadow count).

Names: "blackbox-gb", "blackbox-rf", "blackbox-nn" (black_box.py, ART's learned attack),
"rule-based" (rule_based.py), "lira" (lira.py, offline LiRA), "lira-online" (lira_online.py,
online LiRA with IN and OUT shadows), "label-only" (label_only.py).
"""

from facebone.attacks.base import (
    AttackError,
    AttackNotFittedError,
    MembershipAttack,
    QueryFn,
    ShadowTrainer,
    cached_shadow_trainer,
    identity_of,
    identity_scores,
)
from facebone.attacks.black_box import BlackBoxAttack
from facebone.attacks.label_only import LabelOnlyAttack
from facebone.attacks.lira import LiRAAttack
from facebone.attacks.lira_online import OnlineLiRAAttack
from facebone.attacks.metrics import evaluate_scores
from facebone.attacks.plot import plot_roc
from facebone.attacks.registry import (
    ATTACKS,
    check_attack_names,
    create_attack,
    list_attacks,
    register_attack,
)
from facebone.attacks.rule_based import RuleBasedAttack
from facebone.attacks.runner import run_membership_attacks

__all__ = [
    "ATTACKS",
    "AttackError",
    "AttackNotFittedError",
    "BlackBoxAttack",
    "LabelOnlyAttack",
    "LiRAAttack",
    "MembershipAttack",
    "OnlineLiRAAttack",
    "QueryFn",
    "RuleBasedAttack",
    "ShadowTrainer",
    "cached_shadow_trainer",
    "check_attack_names",
    "create_attack",
    "evaluate_scores",
    "identity_of",
    "identity_scores",
    "list_attacks",
    "plot_roc",
    "register_attack",
    "run_membership_attacks",
]
