"""Membership inference attacks on face-verification systems.

Every attack is one class with the scikit-learn contract (`fit(shadow_trainer, attacker_pairs)`,
`infer(target, candidates)`), in one module each; `create_attack(name)` builds one by its name
and `run_membership_attacks` runs several and evaluates them at pair or identity level
(`runner.evaluate_membership_attacks`, which the experiments use, evaluates one scoring at
both levels and can override the shadow count).

Names: "blackbox-gb", "blackbox-rf", "blackbox-nn" (black_box.py, ART's learned attack),
"rule-based" (rule_based.py), "lira" (lira.py, offline LiRA), "lira-online" (lira_online.py,
online LiRA with IN and OUT shadows), "label-only" (label_only.py).
"""

from collections.abc import Callable, Sequence

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
from facebone.attacks.rule_based import RuleBasedAttack
from facebone.errors import FaceBoneError

# Each entry builds the attack with its default options and the run's seed.
ATTACKS: dict[str, Callable[[int], MembershipAttack]] = {
    "blackbox-gb": lambda seed: BlackBoxAttack(model="gb", seed=seed),
    "blackbox-rf": lambda seed: BlackBoxAttack(model="rf", seed=seed),
    "blackbox-nn": lambda seed: BlackBoxAttack(model="nn", seed=seed),
    "rule-based": lambda seed: RuleBasedAttack(),
    "lira": lambda seed: LiRAAttack(seed=seed),
    "lira-online": lambda seed: OnlineLiRAAttack(seed=seed),
    "label-only": lambda seed: LabelOnlyAttack(seed=seed),
}


def list_attacks() -> list[str]:
    """Registered attack names, in the order a full run uses them."""
    return list(ATTACKS)


def check_attack_names(names: Sequence[str]) -> list[str]:
    """The names, repeats dropped; none, or an unknown one, is an error listing the valid ones."""
    if isinstance(names, str):
        raise FaceBoneError("attacks must be a list of attack names, not one string.")
    chosen = list(dict.fromkeys(names))
    if not chosen:
        raise FaceBoneError(f"no attack chosen; choose from: {', '.join(ATTACKS)}.")
    unknown = [name for name in chosen if name not in ATTACKS]
    if unknown:
        raise FaceBoneError(f"unknown attack {unknown[0]!r}; choose from: {', '.join(ATTACKS)}.")
    return chosen


def create_attack(name: str, seed: int = 0) -> MembershipAttack:
    """A new, unfitted attack with its default options."""
    check_attack_names([name])
    return ATTACKS[name](seed)


from facebone.attacks.metrics import evaluate_scores  # noqa: E402
from facebone.attacks.plot import plot_roc  # noqa: E402
from facebone.attacks.runner import run_membership_attacks  # noqa: E402

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
    "run_membership_attacks",
]
