"""The privacy report of a study or a comparison: verdict, utility, privacy per attack and
level with the chance bound, log-scale ROC curves, the privacy-utility frontier, inversion
grids when present, and the original prototype's figures beside ours."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from facebone.attacks.membership.base import LEVELS
from facebone.experiments.threat_matrix import threat_matrix
from facebone.experiments.verdict import GOAL, frontier, judge, summarise_runs
from facebone.reports import figures, tables
from facebone.reports.document import Figure, Report, Section

if TYPE_CHECKING:
    from facebone.studies.records import ThreatRecord


def judged(
    runs: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]],
    canaries: Mapping[str, Mapping[str, dict]] | None = None,
) -> dict[str, Any]:
    """`runs[regime][defense]` (one run per seed) with their figures over seeds, the goal
    verdict and the frontier: what the report and the demo read."""
    summary = {
        regime: {defense: summarise_runs(seed_runs) for defense, seed_runs in by_defense.items()}
        for regime, by_defense in runs.items()
    }
    goal = judge(summary, canaries)
    return {
        "runs": runs,
        "summary": summary,
        "canaries": dict(canaries or {}),
        "goal": goal,
        "frontier": frontier(summary, goal),
    }


def slug(text: str) -> str:
    """`text` fit for a file name: a regime named by a user may hold `/` or spaces."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def roc_figures(results: Mapping[str, Any]) -> list[Figure]:
    """Per regime and level, a panel per attack with each defense's ROC on its first seed."""
    made = []
    for regime, by_defense in results["runs"].items():
        summary = results["summary"][regime]
        for level in LEVELS:
            panels: dict[str, dict[str, dict]] = {}
            for defense, runs in by_defense.items():
                for attack, metrics in runs[0]["attacks"][level].items():
                    auc = summary[defense]["levels"][level]["attacks"][attack]["auc"]["mean"]
                    panels.setdefault(attack, {})[f"{defense} ({auc:.2f})"] = metrics
            seed = next(iter(by_defense.values()))[0]["seed"]
            made.append(
                Figure(
                    f"roc-{slug(regime)}-{level}.png",
                    figures.roc_panels(
                        panels, f"{regime} regime, {level} level: ROC per attack (seed {seed})"
                    ),
                    f"ROC curves, {regime} regime, {level} level, log FPR axis; the legend "
                    "gives each defense's mean AUC over seeds.",
                )
            )
    return made


def build_report(
    results: Mapping[str, Any],
    title: str = "FaceBone privacy report",
    intro: Sequence[str] = (),
    grids: Sequence[Figure] = (),
    inversion: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Sequence[Section] = (),
    threats: Sequence[ThreatRecord] = (),
) -> Report:
    """The whole report of `judged(...)`-shaped results; `grids` are inversion grids and
    `inversion` their scores (`tables.inversion_table`); `extra` sections (a study's own
    views, such as the leakage map) come before the ROC curves."""
    goal = results["goal"]
    matrix = threat_matrix(goal, threats)
    sections = [
        Section(
            "Threats x deployments",
            (*tables.MATRIX_NOTE, tables.threat_matrix_table(matrix)),
        ),
        Section(
            "Verdict (strongest attack over both levels)",
            (*tables.goal_lines(goal), tables.verdict_table(results)),
        ),
        Section("Systems", (tables.systems_table(results),)),
        Section(
            "Utility",
            (
                "Accuracy at the system's threshold, ROC AUC and TAR at FAR 1% / 0.1% on "
                "identity-disjoint test pairs (people never seen in training).",
                tables.utility_table(results),
            ),
        ),
        Section(
            "Original prototype beside this study",
            (tables.PROTOTYPE_NOTE, tables.prototype_table(results)),
        ),
        Section(
            "Chance bound (strongest of all attack evaluations at chance, p = 0.05)",
            (tables.chance_table(results),),
        ),
    ]
    for regime, summary in results["summary"].items():
        for level in LEVELS:
            sections.append(
                Section(
                    f"Privacy: {regime} regime, {level} level",
                    (tables.chance_line(summary, level), tables.privacy_table(summary, level)),
                )
            )
    if results.get("canaries"):
        sections.append(Section("Canary audit", (tables.canary_table(results["canaries"]),)))
    fails = tables.failure_lines(goal)
    if fails:
        sections.append(Section("Why each defense fails", tuple(fails)))
    sections.extend(extra)
    sections.append(Section("ROC curves", tuple(roc_figures(results))))
    sections.append(
        Section(
            "Privacy-utility frontier",
            (
                Figure(
                    "frontier.png",
                    figures.frontier(results["frontier"], goal.get("criteria", GOAL)),
                    "Accuracy against the strongest attack's AUC per defense; the shaded "
                    "region and dashed lines are the goal.",
                ),
            ),
        )
    )
    if grids or inversion:
        scores = (tables.inversion_table(inversion),) if inversion else ()
        sections.append(Section("Model inversion", (*scores, *grids)))
    return Report(title, tuple(intro), tuple(sections))
