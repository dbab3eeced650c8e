"""The goal a defended system must meet, judged on figures averaged over split seeds.

A defense meets the goal when, in every regime run, its mean accuracy on identity-disjoint
test pairs is at least 0.99 and every attack, at pair and at identity level, stays at or
under the goal's AUC and TPR at 1% and 0.1% FPR (means over seeds), and the canary audit,
where it ran, finds at most 5% of the canaries at 1% FPR. A privacy claim is only as good
as the strongest attack it survived: the judgement takes the worst attack everywhere.

`meets_within_chance` also accepts a figure above the goal that the strongest attack at
chance reaches on the same numbers of members, non-members and seeds (`statistics.py`):
there the measurement cannot tell it from no leak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from facebone.attacks.membership.base import LEVELS
from facebone.experiments.defenses import UNDEFENDED
from facebone.experiments.statistics import chance_band, mean_sd

GOAL = {
    "min_accuracy": 0.99,
    "max_auc": 0.55,
    "max_tpr_at_fpr": {"0.01": 0.02, "0.001": 0.005},
    "max_canary_tpr_at_1pct_fpr": 0.05,
}


def goal_statement(criteria: Mapping[str, Any] = GOAL) -> str:
    """The goal in one sentence, every criterion of `criteria` (as `GOAL`) stated."""
    tpr = criteria["max_tpr_at_fpr"]
    return (
        f"accuracy >= {criteria['min_accuracy']} on identity-disjoint pairs; against every "
        f"attack at pair and identity level AUC <= {criteria['max_auc']}, TPR at 1% FPR <= "
        f"{100 * tpr['0.01']:g}%, TPR at 0.1% FPR <= {100 * tpr['0.001']:g}%; canary TPR at 1% "
        f"FPR <= {100 * criteria['max_canary_tpr_at_1pct_fpr']:g}% where the canary audit ran; "
        "in every regime, as means over seeds"
    )


def summarise_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd over the seeds' runs of one (regime, defense), with the chance band."""
    first = runs[0]
    attack_names = list(first["attacks"]["pair"])
    n_tests = len(attack_names) * len(LEVELS)
    levels = {}
    for level in LEVELS:
        attacks = {}
        for name in attack_names:
            per_seed = [run["attacks"][level][name] for run in runs]
            attacks[name] = {
                key: mean_sd([m[key] for m in per_seed])
                for key in ("auc", "advantage", "balanced_accuracy")
            }
            attacks[name]["tpr_at_fpr"] = {
                fpr: mean_sd([m["tpr_at_fpr"][fpr] for m in per_seed])
                for fpr in per_seed[0]["tpr_at_fpr"]
            }
            attacks[name]["shadows"] = per_seed[0].get("shadows", 0)
            attacks[name]["queries"] = per_seed[0].get("queries", 1)
        counts = first["attacks"][level][attack_names[0]]
        levels[level] = {
            "attacks": attacks,
            "chance": chance_band(counts["n_members"], counts["n_nonmembers"], len(runs), n_tests),
            "n_members": counts["n_members"],
            "n_nonmembers": counts["n_nonmembers"],
        }
    epsilons = [run["privacy"]["epsilon"] for run in runs]
    return {
        "seeds": [run["seed"] for run in runs],
        "accuracy": mean_sd([run["utility"]["accuracy"] for run in runs]),
        "utility_auc": mean_sd([run["utility"]["auc"] for run in runs]),
        "train_accuracy": mean_sd([run["train_accuracy"] for run in runs]),
        "epsilon": None if None in epsilons else mean_sd(epsilons),
        "delta": runs[0]["privacy"]["delta"],
        "levels": levels,
        "time_s": mean_sd([run["timings"]["total_s"] for run in runs]),
    }


def worst_attacks(entry: dict[str, Any]) -> dict[str, Any]:
    """The strongest attack's mean figures over both levels: AUC and each TPR at low FPR,
    each with the attack and level that reached it."""
    worst: dict[str, Any] = {}
    for level, data in entry["levels"].items():
        for name, metrics in data["attacks"].items():
            figures = {"auc": metrics["auc"], **metrics["tpr_at_fpr"]}
            for key, value in figures.items():
                if key not in worst or value["mean"] > worst[key]["mean"]:
                    worst[key] = {**value, "attack": name, "level": level}
    return worst


def _limits() -> dict[str, float]:
    return {"auc": GOAL["max_auc"], **GOAL["max_tpr_at_fpr"]}


def judge_entry(entry: dict[str, Any], canary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The goal for one (regime, defense): what fails, as stated and beyond chance."""
    fails, beyond_chance = [], []
    accuracy = entry["accuracy"]["mean"]
    if accuracy < GOAL["min_accuracy"]:
        fails.append(f"accuracy {accuracy:.3f} < {GOAL['min_accuracy']}")
        beyond_chance.append(fails[-1])
    for level, data in entry["levels"].items():
        chance = {"auc": data["chance"]["auc"], **data["chance"]["tpr_at_fpr"]}
        for name, metrics in data["attacks"].items():
            figures = {"auc": metrics["auc"]["mean"]}
            figures |= {fpr: m["mean"] for fpr, m in metrics["tpr_at_fpr"].items()}
            for key, limit in _limits().items():
                what = "AUC" if key == "auc" else f"TPR@{float(key):.1%}FPR"
                if figures[key] > limit:
                    fails.append(f"{name} {level} {what} {figures[key]:.3f} > {limit}")
                    if figures[key] > chance[key]:
                        beyond_chance.append(f"{fails[-1]} (chance <= {chance[key]:.3f})")
    if canary is not None:
        found = canary["tpr_at_fpr"]["0.01"]["mean"]
        limit = GOAL["max_canary_tpr_at_1pct_fpr"]
        if found > limit:
            fails.append(f"canaries TPR@1%FPR {found:.3f} > {limit}")
            beyond_chance.append(fails[-1])
    return {
        "accuracy": accuracy,
        "worst": worst_attacks(entry),
        "meets": not fails,
        "fails": fails,
        "meets_within_chance": not beyond_chance,
        "fails_beyond_chance": beyond_chance,
    }


def judge(
    summary: Mapping[str, Mapping[str, dict]],
    canaries: Mapping[str, Mapping[str, dict]] | None = None,
) -> dict[str, Any]:
    """Which defenses meet the goal in every regime, and the recommended one (the highest
    worst-regime accuracy among them); the undefended system is judged, never recommended.
    `canaries[regime][defense]` are canary audit figures where the audit ran."""
    per_defense: dict[str, dict[str, Any]] = {}
    for regime, by_defense in summary.items():
        for defense, entry in by_defense.items():
            canary = (canaries or {}).get(regime, {}).get(defense)
            judged = judge_entry(entry, canary)
            per_defense.setdefault(defense, {"regimes": {}})["regimes"][regime] = judged
    for entry in per_defense.values():
        regimes = entry["regimes"].values()
        entry["meets"] = all(r["meets"] for r in regimes)
        entry["meets_within_chance"] = all(r["meets_within_chance"] for r in regimes)
        entry["min_accuracy"] = min(r["accuracy"] for r in regimes)

    def best_of(key: str) -> tuple[list[str], str | None]:
        meeting = [d for d, e in per_defense.items() if e[key] and d != UNDEFENDED]
        best = max(meeting, key=lambda d: per_defense[d]["min_accuracy"]) if meeting else None
        return meeting, best

    meeting, best = best_of("meets")
    meeting_within_chance, best_within_chance = best_of("meets_within_chance")
    return {
        "criteria": GOAL,
        "scope": "means over seeds; every attack, pair and identity level, every regime run",
        "defenses": per_defense,
        "meeting": meeting,
        "best_defense": best,
        "meeting_within_chance": meeting_within_chance,
        "best_within_chance": best_within_chance,
    }


def frontier(
    summary: Mapping[str, Mapping[str, dict]], goal: dict[str, Any]
) -> list[dict[str, Any]]:
    """The privacy-utility frontier: per (regime, defense) the mean accuracy against the
    strongest attack's mean AUC, and whether the defense meets the goal (`judge`) there."""
    points = []
    for regime, by_defense in summary.items():
        for defense, entry in by_defense.items():
            judged = goal["defenses"][defense]["regimes"][regime]
            points.append(
                {
                    "defense": defense,
                    "regime": regime,
                    "accuracy": entry["accuracy"]["mean"],
                    "attack_auc": judged["worst"]["auc"]["mean"],
                    "meets_goal": judged["meets"],
                }
            )
    return points
