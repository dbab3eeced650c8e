"""What `facebone experiment` adds to reports: the canary audit's own report (written into
its output folder as `report.html` and `report.md`, replacing the previous run's), and the
leakage map's sections in its study report (`reports.sources.write_folder_report`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facebone.attacks.membership.base import LEVELS
from facebone.reports import figures, tables
from facebone.reports.document import Figure, Report, Section, Table
from facebone.reports.output import write_report

REPORT = "report.html"


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


def leakage_sections(
    results: Mapping[str, Any], cells: Mapping[str, tuple[str, int]]
) -> tuple[Section, ...]:
    """The leakage map of a study whose regimes are its cells (`cells[regime] = (training
    pairs, epochs)`, one system in each): utility and the strongest attack per cell, as
    tables and a heatmap per level."""
    sizes = list(dict.fromkeys(size for size, _ in cells.values()))
    epochs = list(dict.fromkeys(n for _, n in cells.values()))
    where = {cell: regime for regime, cell in cells.items()}

    def grid(value: Callable[[dict[str, Any]], Any]) -> list[list[Any]]:
        """`value(summary)` per cell: a row per size, a column per epoch count; None where
        the study has not run that cell yet."""
        summary = results["summary"]
        return [
            [
                value(next(iter(summary[where[s, e]].values())))
                if (s, e) in where and where[s, e] in summary
                else None
                for e in epochs
            ]
            for s in sizes
        ]

    def table(value: Callable[[dict[str, Any]], str]) -> Table:
        rows = grid(value)
        return Table.of(
            ["pairs \\ epochs", *map(str, epochs)],
            [
                [s, *("-" if v is None else v for v in row)]
                for s, row in zip(sizes, rows, strict=True)
            ],
        )

    def strongest(entry: dict[str, Any], level: str, key: str) -> float:
        attacks = entry["levels"][level]["attacks"].values()
        if key == "auc":
            return max(a["auc"]["mean"] for a in attacks)
        return max(a["tpr_at_fpr"][key]["mean"] for a in attacks)

    sections = [
        Section(
            "Leakage map: utility, test accuracy (train accuracy)",
            (table(lambda e: f"{e['accuracy']['mean']:.3f} ({e['train_accuracy']['mean']:.3f})"),),
        )
    ]
    for level in LEVELS:
        sections.append(
            Section(
                f"Leakage map: {level} level",
                (
                    "Each cell: the highest mean AUC over the attacks / the highest TPR at 1% "
                    "FPR / at 0.1% FPR.",
                    table(
                        lambda e, level=level: (
                            f"{strongest(e, level, 'auc'):.3f} / "
                            f"{tables.pct(strongest(e, level, '0.01'))} / "
                            f"{tables.pct(strongest(e, level, '0.001'))}"
                        )
                    ),
                ),
            )
        )
    panels = {
        f"{level} level: best AUC (best TPR at 1% FPR)": tuple(
            np.array(
                [
                    [np.nan if v is None else v for v in row]
                    for row in grid(lambda e, level=level, key=key: strongest(e, level, key))
                ],
                dtype=float,
            )
            for key in ("auc", "0.01")
        )
        for level in LEVELS
    }
    heatmap = figures.heatmap(panels, sizes, [str(e) for e in epochs], ("epochs", "training pairs"))
    caption = "Strongest attack's mean AUC per cell"
    sections.append(Section("Leakage heatmap", (Figure("leakage-heatmap.png", heatmap, caption),)))
    return tuple(sections)
