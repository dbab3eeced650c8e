"""An experiment results folder (`facebone experiment compare --out DIR`) as the report pages
need it: the privacy-utility frontier from results.json, report.md, and the plots."""

import json
from dataclasses import dataclass, field
from pathlib import Path

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
    """Whatever of results.json, report.md and *.png the folder holds; damage is an error.

    Files whose name contains "inversion" are model-inversion results, for their own page.
    """
    if not folder.is_dir():
        raise FaceBoneError(f"results folder {folder} does not exist")
    frontier = None
    results_file = folder / "results.json"
    if results_file.is_file():
        frontier = _frontier(_read_json(results_file), results_file)
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
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"{path} cannot be read ({error})") from None
    if not isinstance(document, dict):
        raise FaceBoneError(f"{path} does not hold a JSON object")
    return document


def _frontier(results: dict, path: Path) -> list[FrontierPoint] | None:
    entries = results.get("frontier")
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise FaceBoneError(f"{path}: 'frontier' is not a list")
    points = []
    for index, entry in enumerate(entries):
        try:
            points.append(
                FrontierPoint(
                    defense=str(entry["defense"]),
                    regime=str(entry["regime"]),
                    accuracy=float(entry["accuracy"]),
                    attack_auc=float(entry["attack_auc"]),
                    meets_goal=bool(entry["meets_goal"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FaceBoneError(f"{path}: frontier entry {index} is incomplete ({error})") from None
    return points
