"""A study folder (`facebone study run`, `facebone experiment compare --out DIR`) as the
report pages need it: the privacy-utility frontier of its results store, report.md, the plots
and any inversion results."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError


@dataclass(frozen=True)
class FrontierPoint:
    """One defense in one regime: its utility and the strongest attack's AUC against it."""

    defense: str
    regime: str
    accuracy: float
    attack_auc: float
    meets_goal: bool


@dataclass(frozen=True)
class ResultsFolder:
    path: Path
    frontier: list[FrontierPoint] | None = None
    report: str | None = None
    plots: list[Path] = field(default_factory=list)
    inversion_plots: list[Path] = field(default_factory=list)
    inversion_metrics: dict[str, dict] = field(default_factory=dict)

    def verdict(self) -> dict[str, bool]:
        """{defense: meets the goal in every regime measured}, from the frontier."""
        held: dict[str, bool] = {}
        for point in self.frontier or []:
            held[point.defense] = held.get(point.defense, True) and point.meets_goal
        return held


def read_results(folder: Path) -> ResultsFolder:
    """Whatever of a results store, report.md and *.png the folder holds; damage is an error.

    Files whose name contains "inversion" are model-inversion results, for their own page.
    """
    from facebone.studies.store import DATABASE

    if not folder.is_dir():
        raise FaceBoneError(f"results folder {folder} does not exist")
    frontier = _frontier(folder) if (folder / DATABASE).is_file() else None
    report_file = folder / "report.md"
    report = (
        report_file.read_text(encoding="utf-8", errors="replace") if report_file.is_file() else None
    )
    plots = sorted(folder.glob("*.png"))
    inversion_metrics = {
        path.name: _read_json(path) for path in sorted(folder.glob("*inversion*.json"))
    }
    return ResultsFolder(
        path=folder,
        frontier=frontier,
        report=report,
        plots=[p for p in plots if "inversion" not in p.name],
        inversion_plots=[p for p in plots if "inversion" in p.name],
        inversion_metrics=inversion_metrics,
    )


def _read_json(path: Path) -> dict:
    try:
        document = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"{path} cannot be read ({error})") from None
    if not isinstance(document, dict):
        raise FaceBoneError(f"{path} does not hold a JSON object")
    return document


def _frontier(folder: Path) -> list[FrontierPoint]:
    """Per defense and regime, the study's mean accuracy against the strongest attack's
    mean AUC (`experiments.verdict.frontier` over the store's records)."""
    from facebone.reports.sources import load_results

    return [
        FrontierPoint(
            defense=entry["defense"],
            regime=entry["regime"],
            accuracy=entry["accuracy"],
            attack_auc=entry["attack_auc"],
            meets_goal=entry["meets_goal"],
        )
        for entry in load_results(folder).results["frontier"]
    ]
