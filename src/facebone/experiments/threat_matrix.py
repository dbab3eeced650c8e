"""One verdict per deployment across the four threats: the threat x defense matrix.

Each cell is the strongest attack of one family against one deployment (a system in a
regime), as the mean ± sd of its headline figure over split seeds, beside the chance level
the same figure reaches when nothing leaks and the goal a defended deployment must meet:

- membership: the membership judgement (`verdict.judge_entry`: AUC and TPR at 1% / 0.1% FPR
  of every attack at pair and identity level, canaries where audited); the cell shows the
  strongest AUC with its attack and level;
- inversion: SAR type I at FAR 0.1% from the stolen store (or the service), goal 0.5%;
- attribute: gender balanced accuracy, goal 0.55 from stolen templates and 0.60 through the
  service;
- extraction: fidelity of the copy per query budget, reported (no goal: a verifier that
  answers can be copied; output hardening and budgets change how well).

"Strongest" is the attack whose mean figure stands highest above its goal (above its chance
level where there is no goal). A family's status is `meets` (every attack at or under its
goal), `within chance` (over the goal, but not beyond what chance reaches: the measurement
cannot tell it from no leak) or `fails`; extraction is `reported`. A deployment holds when
every family with a goal meets it or stays within chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facebone.attacks.base import FAMILIES
from facebone.experiments.statistics import mean_sd
from facebone.studies.records import ThreatRecord

MEETS, WITHIN_CHANCE, FAILS, REPORTED, NOT_RUN = (
    "meets",
    "within chance",
    "fails",
    "reported",
    "not run",
)


@dataclass(frozen=True)
class MatrixCell:
    """The strongest attack of one family against one deployment, over seeds."""

    family: str
    attack: str
    setting: str
    metric: str
    mean: float
    sd: float
    n_seeds: int
    chance: float
    goal: float | None
    status: str


def _status(mean: float, chance: float, goal: float | None) -> str:
    if goal is None:
        return REPORTED
    if mean <= goal:
        return MEETS
    return WITHIN_CHANCE if mean <= chance else FAILS


def threat_cells(records: Sequence[ThreatRecord]) -> dict[tuple[str, str], dict[str, MatrixCell]]:
    """`{(regime, system): {family: the strongest attack's cell}}` of the threat records."""
    grouped: dict[tuple, list[ThreatRecord]] = {}
    for record in records:
        key = record.key
        grouped.setdefault(
            (key.regime, key.system, key.family, key.attack, key.setting), []
        ).append(record)
    cells: dict[tuple[str, str], dict[str, MatrixCell]] = {}
    for (regime, system, family, attack, setting), seeds in grouped.items():
        figure = mean_sd([r.value for r in seeds])
        chance = mean_sd([r.chance for r in seeds])["mean"]
        goal = seeds[0].goal
        cell = MatrixCell(
            family,
            attack,
            setting,
            seeds[0].metric,
            figure["mean"],
            figure["sd"],
            figure["n"],
            chance,
            goal,
            _status(figure["mean"], chance, goal),
        )
        held = cells.setdefault((regime, system), {})
        if family not in held or _margin(cell) > _margin(held[family]):
            held[family] = cell
    return cells


def _margin(cell: MatrixCell) -> float:
    return cell.mean - (cell.chance if cell.goal is None else cell.goal)


def membership_cell(judged: Mapping[str, Any]) -> MatrixCell:
    """The membership cell of one (regime, defense) judgement (`verdict.judge_entry`)."""
    worst = judged["worst"]["auc"]
    status = MEETS if judged["meets"] else WITHIN_CHANCE if judged["meets_within_chance"] else FAILS
    return MatrixCell(
        "membership",
        worst["attack"],
        worst["level"],
        "AUC",
        worst["mean"],
        worst["sd"],
        worst["n"],
        float("nan"),
        None,
        status,
    )


def threat_matrix(
    goal: Mapping[str, Any], records: Sequence[ThreatRecord]
) -> dict[tuple[str, str], dict[str, Any]]:
    """`{(regime, system): {"cells": {family: cell or None}, "holds": bool, "status": ...}}`
    from the membership judgement (`verdict.judge`) and the other families' records."""
    others = threat_cells(records)
    matrix = {}
    for system, entry in goal["defenses"].items():
        for regime, judged in entry["regimes"].items():
            cells: dict[str, MatrixCell | None] = {f: None for f in FAMILIES}
            cells["membership"] = membership_cell(judged)
            cells.update(others.get((regime, system), {}))
            judged_cells = [c for c in cells.values() if c is not None and c.goal is not None]
            judged_cells.append(cells["membership"])
            holds = all(c.status in (MEETS, WITHIN_CHANCE) for c in judged_cells)
            missing = [f for f, c in cells.items() if c is None]
            matrix[(regime, system)] = {
                "cells": cells,
                "holds": holds and not missing,
                "missing": missing,
                "accuracy": judged["accuracy"],
            }
    return matrix
