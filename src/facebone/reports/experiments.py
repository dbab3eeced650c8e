"""The reports of `facebone experiment compare`, `canaries` and `leakage`: each is a
`Report` written into the experiment's own output folder as `report.html` and `report.md`
(with its figures), replacing the previous run's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facebone.attacks.runner import LEVELS
from facebone.experiments.statistics import chance_band
from facebone.reports import figures, tables
from facebone.reports.document import Figure, Report, Section, Table
from facebone.reports.output import write_report
from facebone.reports.sources import compare_intro
from facebone.reports.study import build_report

REPORT = "report.html"


def write_compare_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """The comparison's report into `out`; the paths written."""
    report = build_report(results, "FaceBone defense comparison", intro=(compare_intro(results),))
    return write_report(report, Path(out) / REPORT, force=True)


def write_canary_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    report = Report(
        "FaceBone canary audit",
        (
            f"Split seeds {', '.join(map(str, results['seeds']))}; "
            f"{results['timings']['total_s']:.0f} s.",
        ),
        (Section("Canaries found", (tables.canary_table(results["canaries"]),)),),
    )
    return write_report(report, Path(out) / REPORT, force=True)


# ---- the leakage map: sizes x epochs of the undefended nn ----------------------------------


def _cells(results: dict[str, Any], value: Callable[[dict], Any]) -> list[list[Any]]:
    """`value(cell)` per cell of the map: a row per size, a column per epoch count."""
    return [
        [value(results["cells"][size][str(e)]) for e in results["epochs"]]
        for size in results["sizes"]
    ]


def _cell_table(results: dict[str, Any], text: Callable[[dict], str]) -> Table:
    rows = _cells(results, text)
    return Table.of(
        ["pairs \\ epochs", *map(str, results["epochs"])],
        [[size, *row] for size, row in zip(results["sizes"], rows, strict=True)],
    )


def _best_cell(best: dict[str, Any]) -> str:
    return (
        f"{best['auc']:.3f} ({best['attack']}) / {tables.pct(best['max_tpr_at_fpr']['0.01'])} "
        f"/ {tables.pct(best['max_tpr_at_fpr']['0.001'])}"
    )


def _attack_cell(metrics: dict[str, Any]) -> str:
    tpr = metrics["tpr_at_fpr"]
    return f"{metrics['auc']:.3f} / {tables.pct(tpr['0.01'])} / {tables.pct(tpr['0.001'])}"


def _chance(run: dict[str, Any], level: str) -> dict[str, Any]:
    """The chance band of one run's strongest attack at `level` (all its attacks, both
    levels, one seed)."""
    attacks = run["attacks"][level]
    counts = next(iter(attacks.values()))
    return chance_band(counts["n_members"], counts["n_nonmembers"], 1, len(attacks) * len(LEVELS))


def leakage_report(results: dict[str, Any]) -> Report:
    attacks, epochs = results["attacks"], results["epochs"]
    shadows = "default" if results["n_shadows"] is None else str(results["n_shadows"])
    intro = (
        f"SFace + nn, weight decay {results['weight_decay']:g}, trained on a balanced subset of "
        f"target_train ({', '.join(results['sizes'])} pairs) for {', '.join(map(str, epochs))} "
        f"epochs; attacks {', '.join(attacks)} with {shadows} shadows each. Data "
        f"`{results['data']}`, seed {results['seed']}; total run time "
        f"{results['timings']['total_s']:.0f} s."
    )
    sections = [
        Section(
            "Utility: test accuracy (train accuracy)",
            (
                _cell_table(
                    results,
                    lambda c: f"{c['utility']['accuracy']:.3f} ({c['train_accuracy']:.3f})",
                ),
            ),
        )
    ]
    for level in LEVELS:
        chances = {
            size: _chance(next(iter(results["cells"][size].values())), level)
            for size in results["sizes"]
        }
        bound = "; ".join(
            f"{size} pairs: AUC {c['auc']:.3f}, TPR@1% {tables.pct(c['tpr_at_fpr']['0.01'])}"
            for size, c in chances.items()
        )
        per_attack = Table.of(
            ["pairs", "epochs", *attacks],
            [
                [size, str(e)]
                + [
                    _attack_cell(results["cells"][size][str(e)]["attacks"][level][a])
                    for a in attacks
                ]
                for size in results["sizes"]
                for e in epochs
            ],
        )
        sections.append(
            Section(
                f"{level.capitalize()} level",
                (
                    "Each cell: the highest AUC over the attacks (and which attack) / the "
                    "highest TPR at 1% FPR / at 0.1% FPR over the attacks. The strongest attack "
                    f"at chance stays below {bound} (95%, Bonferroni).",
                    _cell_table(results, lambda c, level=level: _best_cell(c["best"][level])),
                    f"Per attack, {level} level (AUC / TPR@1% / TPR@0.1%):",
                    per_attack,
                ),
            )
        )
    panels = {
        f"{level} level: best AUC (best TPR at 1% FPR)": (
            np.array(_cells(results, lambda c, level=level: c["best"][level]["auc"])),
            np.array(
                _cells(results, lambda c, level=level: c["best"][level]["max_tpr_at_fpr"]["0.01"])
            ),
        )
        for level in LEVELS
    }
    heatmap = figures.heatmap(
        panels, results["sizes"], [str(e) for e in epochs], ("epochs", "training pairs")
    )
    sections.append(
        Section(
            "Heatmap",
            (Figure("leakage-heatmap.png", heatmap, "Strongest attack's AUC per cell"),),
        )
    )
    return Report("FaceBone: where the undefended nn predictor leaks", (intro,), tuple(sections))


def write_leakage_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    return write_report(leakage_report(results), Path(out) / REPORT, force=True)
