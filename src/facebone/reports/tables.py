"""The report's tables, from comparison-shaped results: `runs[regime][defense]` (one run
per split seed, as `reports.sources.runs_from_records` makes it), their `summary`
(`verdict.summarise_runs`), the `goal` (`verdict.judge`) and, where the audit ran, the
`canaries`. Figures over seeds read `mean ± sd` (sd only over several seeds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facebone.experiments.defenses import display_name
from facebone.experiments.statistics import mean_sd
from facebone.experiments.verdict import goal_statement
from facebone.reports.document import Table

FPRS = ("0.01", "0.001")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def mean_sd_text(entry: Mapping[str, float], digits: int = 3, percent: bool = False) -> str:
    """`mean ± sd`; the sd only where there are several values."""
    scale, unit, places = (100, "%", 1) if percent else (1, "", digits)
    text = f"{scale * entry['mean']:.{places}f}{unit}"
    if entry.get("n", 1) > 1:
        text += f" ± {scale * entry['sd']:.{places}f}"
    return text


def name(text: str) -> str:
    return f"`{display_name(text)}`"


def goal_lines(goal: Mapping[str, Any]) -> list[str]:
    """The goal stated, which defenses meet it, and the recommendation."""
    meeting = goal["meeting"]
    failing = [d for d in goal["defenses"] if d not in meeting]
    best = goal["best_defense"]
    return [
        f"Goal: {goal_statement(goal['criteria'])}.",
        "**Meet the goal:** " + (", ".join(map(name, meeting)) or "no defense") + ". "
        "**Do not:** "
        + (", ".join(map(name, failing)) or "every system meets it")
        + ". "
        + (f"**Recommended:** {name(best)}." if best else "**Recommended:** no defense."),
    ]


def verdict_table(results: Mapping[str, Any]) -> Table:
    rows = []
    canaries = results.get("canaries") or {}
    for defense, entry in results["goal"]["defenses"].items():
        for regime, judged in entry["regimes"].items():
            worst = judged["worst"]
            canary = canaries.get(regime, {}).get(defense)
            rows.append(
                [
                    name(defense),
                    regime,
                    mean_sd_text(results["summary"][regime][defense]["accuracy"]),
                    _worst_text(worst["auc"]),
                    _worst_text(worst["0.01"], percent=True),
                    _worst_text(worst["0.001"], percent=True),
                    "-"
                    if canary is None
                    else mean_sd_text(canary["tpr_at_fpr"]["0.01"], percent=True),
                    "yes" if judged["meets"] else "no",
                    "yes" if judged["meets_within_chance"] else "no",
                ]
            )
    header = ("defense", "regime", "accuracy", "strongest AUC", "TPR@1%FPR", "TPR@0.1%FPR")
    return Table.of((*header, "canary TPR@1%", "meets goal", "within chance"), rows)


def _worst_text(worst: Mapping[str, Any], percent: bool = False) -> str:
    """A strongest-attack figure with the attack and the level (pair or identity) that
    reached it: each figure of a verdict row may come from another level."""
    return f"{mean_sd_text(worst, percent=percent)} ({worst['attack']}, {worst['level']})"


def failure_lines(goal: Mapping[str, Any], shown: int = 4) -> list[str]:
    """Per failing (defense, regime), its first `shown` reasons."""
    lines = []
    for defense, entry in goal["defenses"].items():
        for regime, judged in entry["regimes"].items():
            if judged["fails"]:
                more = len(judged["fails"]) - shown
                lines.append(
                    f"{name(defense)} ({regime}): {'; '.join(judged['fails'][:shown])}"
                    + (f"; {more} more" if more > 0 else "")
                )
    return lines


def systems_table(results: Mapping[str, Any]) -> Table:
    """What each system is: its backbones, predictor, policy and predictor options."""
    rows = {}
    for by_defense in results["runs"].values():
        for defense, runs in by_defense.items():
            system = runs[0]["system"]
            policy = system["mitigation"]
            if policy != "none":
                policy += f" (assign {system['assign']}, infer {system['infer']})"
            options = system.get("predictor_params") or {}
            shown = ", ".join(f"{k} {v}" for k, v in options.items() if v is not None)
            rows.setdefault(
                defense,
                [
                    name(defense),
                    " + ".join(map(name, system["backbones"])),
                    system["predictor"],
                    policy,
                    shown or "-",
                ],
            )
    header = ("defense", "backbones", "predictor", "mitigation", "predictor options")
    return Table.of(header, list(rows.values()))


def utility_table(results: Mapping[str, Any]) -> Table:
    rows = []
    for regime, by_defense in results["summary"].items():
        for defense, entry in by_defense.items():
            runs = results["runs"][regime][defense]
            tar = {
                far: mean_sd([run["utility"]["tar_at_far"][far] for run in runs]) for far in FPRS
            }
            rows.append(
                [
                    name(defense),
                    regime,
                    mean_sd_text(entry["accuracy"]),
                    mean_sd_text(entry["utility_auc"], 4),
                    mean_sd_text(tar["0.01"], percent=True),
                    mean_sd_text(tar["0.001"], percent=True),
                    mean_sd_text(entry["train_accuracy"]),
                    _dp_text(entry, runs[0]["privacy"]["tuning"]),
                    f"{entry['time_s']['mean']:.0f} s",
                ]
            )
    header = ("defense", "regime", "accuracy", "AUC", "TAR@FAR 1%", "TAR@FAR 0.1%")
    return Table.of((*header, "train accuracy", "DP", "time / seed"), rows)


def _dp_text(entry: Mapping[str, Any], tuning: Mapping[str, Any] | None) -> str:
    if entry["epsilon"] is None:
        return "-"
    text = f"ε {entry['epsilon']['mean']:.2f}, δ {entry['delta']:g}"
    if tuning:
        text += f"; clip {tuning['max_grad_norm']:g}, {tuning['epochs']} epochs"
    return text


def chance_table(results: Mapping[str, Any]) -> Table:
    rows = []
    for regime, by_defense in results["summary"].items():
        entry = next(iter(by_defense.values()))
        for level, data in entry["levels"].items():
            chance = data["chance"]
            rows.append(
                [
                    regime,
                    level,
                    str(len(entry["seeds"])),
                    f"{data['n_members']} / {data['n_nonmembers']}",
                    f"{chance['auc']:.3f}",
                    pct(chance["tpr_at_fpr"]["0.01"]),
                    pct(chance["tpr_at_fpr"]["0.001"]),
                ]
            )
    header = ("regime", "level", "seeds", "members / non-members", "AUC", "TPR@1%", "TPR@0.1%")
    return Table.of(header, rows)


def privacy_table(summary: Mapping[str, Any], level: str) -> Table:
    """Each defense's attacks at `level` in one regime (`summary[defense]`)."""
    rows = []
    for defense, entry in summary.items():
        for attack, metrics in entry["levels"][level]["attacks"].items():
            rows.append(
                [
                    name(defense),
                    attack,
                    mean_sd_text(metrics["auc"]),
                    mean_sd_text(metrics["advantage"]),
                    mean_sd_text(metrics["tpr_at_fpr"]["0.01"], percent=True),
                    mean_sd_text(metrics["tpr_at_fpr"]["0.001"], percent=True),
                    str(metrics["shadows"]),
                    str(metrics["queries"]),
                ]
            )
    header = ("defense", "attack", "AUC", "advantage", "TPR@1%FPR", "TPR@0.1%FPR", "shadows")
    return Table.of((*header, "queries"), rows)


def chance_line(summary: Mapping[str, Any], level: str) -> str:
    data = next(iter(summary.values()))["levels"][level]
    chance = data["chance"]
    n_seeds = len(next(iter(summary.values()))["seeds"])
    return (
        f"{data['n_members']} members, {data['n_nonmembers']} non-members, {n_seeds} seed(s). "
        f"Chance bound (the strongest of these attacks at chance, p = 0.05): AUC "
        f"{chance['auc']:.3f}, TPR@1%FPR {pct(chance['tpr_at_fpr']['0.01'])}, TPR@0.1%FPR "
        f"{pct(chance['tpr_at_fpr']['0.001'])}; figures under it cannot be told from no leak."
    )


CANARY_HEADER = (
    "defense",
    "regime",
    "canary AUC",
    "TPR@1%FPR",
    "TPR@0.1%FPR",
    "mislabeled TPR@1%",
    "atypical TPR@1%",
    "canaries x targets",
)


def canary_table(canaries: Mapping[str, Mapping[str, Any]]) -> Table:
    rows = []
    for regime, by_defense in canaries.items():
        for defense, entry in by_defense.items():
            rows.append(
                [
                    name(defense),
                    regime,
                    mean_sd_text(entry["auc"]),
                    mean_sd_text(entry["tpr_at_fpr"]["0.01"], percent=True),
                    mean_sd_text(entry["tpr_at_fpr"]["0.001"], percent=True),
                    mean_sd_text(entry["by_kind"]["mislabeled"]["0.01"], percent=True),
                    mean_sd_text(entry["by_kind"]["atypical"]["0.01"], percent=True),
                    f"{entry['n_canaries']} x {entry['n_targets']}",
                ]
            )
    return Table.of(CANARY_HEADER, rows)


FARS = ("far_0.001", "far_0.01")


def inversion_table(scores: Mapping[str, Mapping[str, Any]]) -> Table:
    """Model inversion's success attack rates (`where -> {"sar", "ssim", "chance", ...}` of
    `attacks.reconstruction`): reconstructions an independent backbone accepts as the target,
    against the very leaked image (type I) and another image of the person (type II)."""

    def rate(value: Any) -> str:
        return pct(value) if isinstance(value, int | float) else "-"

    rows = []
    for where, entry in scores.items():
        sar, chance = entry["sar"], entry.get("chance", {})
        rows.append(
            [
                where,
                *(rate(sar.get(kind, {}).get(far)) for kind in ("type1", "type2") for far in FARS),
                "-" if entry.get("ssim") is None else f"{entry['ssim']:.3f}",
                " / ".join(rate(chance.get(far)) for far in FARS),
                str(entry.get("n_targets", "-")),
            ]
        )
    header = ("result", "SAR I @FAR 0.1%", "SAR I @FAR 1%", "SAR II @FAR 0.1%", "SAR II @FAR 1%")
    return Table.of((*header, "SSIM", "chance (0.1% / 1%)", "targets"), rows)


# The original prototype's figures, as it reported them: its membership attack was scored on
# the attack model's own training data.
PROTOTYPE = {
    "single": 0.86,
    "multi": 0.89,
    "attack_single": 0.97,
    "attack_multi": 0.82,
}


def _is_plain(system: Mapping[str, Any]) -> bool:
    params = system.get("predictor_params") or {}
    return system["predictor"] == "nn" and not any(
        params.get(key) for key in ("dp_epsilon", "relax_alpha")
    )


def _pick(results: Mapping[str, Any], multi: bool) -> tuple[str, str] | None:
    """The (regime, defense) that stands for the prototype's single-backbone system (an
    undefended nn on one backbone) or its mitigation (multi-backbone nn, round-robin
    assignment first, as the prototype's), in the first regime that has one."""
    for regime, by_defense in results["runs"].items():
        candidates = []
        for defense, runs in by_defense.items():
            system = runs[0]["system"]
            if not _is_plain(system):
                continue
            if multi and system["mitigation"] == "multi":
                candidates.append((system.get("assign") != "round-robin", defense))
            elif not multi and system["mitigation"] == "none" and len(system["backbones"]) == 1:
                candidates.append((False, defense))
        if candidates:
            return regime, min(candidates, key=lambda c: c[0])[1]
    return None


def _strongest_balanced_accuracy(entry: Mapping[str, Any]) -> tuple[dict[str, float], str]:
    best, where = None, ""
    for level, data in entry["levels"].items():
        for attack, metrics in data["attacks"].items():
            if best is None or metrics["balanced_accuracy"]["mean"] > best["mean"]:
                best, where = metrics["balanced_accuracy"], f"{attack}, {level}"
    return best, where


def prototype_table(results: Mapping[str, Any]) -> Table:
    """The prototype's reported figures beside this study's for the matching systems."""
    rows = []
    for multi, accuracy_key, attack_key, what in (
        (False, "single", "attack_single", "single backbone, nn"),
        (True, "multi", "attack_multi", "multi-backbone mitigation, nn"),
    ):
        picked = _pick(results, multi)
        if picked is None:
            ours = attack = "not in this study"
        else:
            regime, defense = picked
            entry = results["summary"][regime][defense]
            balanced, where = _strongest_balanced_accuracy(entry)
            ours = f"{mean_sd_text(entry['accuracy'])} ({name(defense)}, {regime})"
            attack = f"{mean_sd_text(balanced)} ({where})"
        rows.append([f"verification accuracy, {what}", f"{PROTOTYPE[accuracy_key]:.2f}", ours])
        rows.append([f"membership attack accuracy, {what}", f"{PROTOTYPE[attack_key]:.2f}", attack])
    return Table.of(("figure", "original prototype", "this study"), rows)


PROTOTYPE_NOTE = (
    "The prototype measured its membership attack accuracy on the attack model's own training "
    "data, which flatters the attack; this study's attacks are trained on the attacker's "
    "people only and scored on disjoint members and non-members (balanced accuracy at the "
    "threshold each attack chose on its shadows). Its verification accuracy was measured on "
    "its own split; ours is on identity-disjoint test pairs."
)


MATRIX_NOTE = (
    "One row per deployment; each cell is the strongest attack of its threat family, mean "
    "± sd over split seeds, with its chance level and goal: membership AUC (the full "
    "membership judgement: AUC and TPR at 1% and 0.1% FPR of every attack at pair and "
    "identity level), inversion SAR type I at FAR 0.1% (goal 0.5%), gender balanced "
    "accuracy (goal 0.55 from stolen templates, 0.60 through the service), extraction "
    "fidelity (reported, no goal).",
    "Status: **meets** the goal, **within chance** (over the goal but not beyond what "
    "chance reaches), **fails**; a deployment **holds** when every family with a goal "
    "meets it or stays within chance, and every family was attacked.",
)


def _cell_text(cell: Any) -> str:
    if cell is None:
        return "not run"
    figure = f"{cell.mean:.3f}" + (f" ± {cell.sd:.3f}" if cell.n_seeds > 1 else "")
    bounds = []
    if cell.chance == cell.chance:  # NaN: membership, judged against its own bands
        bounds.append(f"chance {cell.chance:.3f}")
    if cell.goal is not None:
        bounds.append(f"goal {cell.goal:g}")
    where = f"{cell.attack}, {cell.setting}"
    judged = "; ".join(bounds) or "judged in the verdict below"
    return f"{figure} {cell.metric} ({where}; {judged}): {cell.status}"


def threat_matrix_table(matrix: Mapping[tuple[str, str], Mapping[str, Any]]) -> Table:
    """The threat x defense matrix (`experiments.threat_matrix.threat_matrix`)."""
    from facebone.attacks.base import FAMILIES

    rows = []
    for (regime, system), entry in matrix.items():
        verdict = (
            "holds"
            if entry["holds"]
            else (
                f"not all threats run ({', '.join(entry['missing'])})"
                if entry["missing"]
                else "fails"
            )
        )
        rows.append(
            [
                name(system),
                regime,
                f"{entry['accuracy']:.3f}",
                *(_cell_text(entry["cells"][family]) for family in FAMILIES),
                verdict,
            ]
        )
    return Table.of(["deployment", "regime", "accuracy", *FAMILIES, "verdict"], rows)
