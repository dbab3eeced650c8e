"""ROC curves of a membership attack run, on a log FPR axis where low-FPR attacks show."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebone.atomic import atomic_path
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_FPR = 1e-3
DECISION_ROC_POINTS = 3  # (0, 0), the one operating point, (1, 1)


def decision_point(fpr: list[float], tpr: list[float]) -> tuple[float, float] | None:
    """The operating point of an attack that only answers yes or no, else `None`: a line
    through its ROC's three points would suggest thresholds it does not have. A constant
    answer is the corner (1, 1)."""
    points = sorted(set(zip(fpr, tpr, strict=True)))
    if len(points) > DECISION_ROC_POINTS:
        return None
    inner = [p for p in points if p not in ((0.0, 0.0), (1.0, 1.0))]
    return inner[0] if inner else points[-1]


def draw_rocs(
    axes,
    curves: Mapping[str, dict[str, Any]],
    title: str,
    legend_loc: str | None = None,
    legend_size: str = "small",
) -> None:
    """Draw each curve's ROC (`label -> metrics` of `evaluate_scores`) and the chance line
    on `axes`, with FPR on a log axis from `MIN_FPR` to 1; a decision-only attack is one
    marker. The legend goes right of the axes, where it hides no curve, unless `legend_loc`
    places it inside them."""
    for label, metrics in curves.items():
        fpr, tpr = metrics["roc"]["fpr"], metrics["roc"]["tpr"]
        point = decision_point(fpr, tpr)
        if point is None:
            clipped = [max(v, MIN_FPR) for v in fpr]
            axes.plot(clipped, tpr, label=label, drawstyle="steps-post")
        else:
            x = max(point[0], MIN_FPR)
            # Not clipped: an attack answering "member" to nearly all sits on the corner.
            axes.plot([x], [point[1]], marker="o", linestyle="none", clip_on=False, label=label)
    chance = np.geomspace(MIN_FPR, 1.0, 100)  # straight y = x needs many points on a log axis
    axes.plot(chance, chance, "k--", linewidth=0.8, label="chance")
    axes.set_xscale("log")
    axes.set_xlim(MIN_FPR, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(title)
    if legend_loc is None:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=legend_size)
    else:
        axes.legend(loc=legend_loc, fontsize=legend_size)
    axes.grid(True, which="both", alpha=0.3)


def roc_figure(results: dict[str, Any], model: str | None = None) -> Figure:
    """One ROC per attack of `run_membership_attacks(...)` output; the title names `model`."""
    # A bare Figure renders with Agg and leaves pyplot's global state and backend alone.
    from matplotlib.figure import Figure

    attacks = results.get("attacks") if isinstance(results, dict) else None
    if not attacks:
        raise FaceBoneError("results hold no attacks to plot; pass run_membership_attacks output.")
    target = f" on {model}" if model else ""
    figure = Figure(figsize=(8.5, 5), layout="constrained")
    draw_rocs(
        figure.subplots(),
        {f"{name} (AUC {metrics['auc']:.3f})": metrics for name, metrics in attacks.items()},
        f"Membership inference{target}, {results.get('level', 'pair')} level",
    )
    return figure


def check_plot_format(path: str | Path) -> str:
    """The file format the suffix of `path` names, checked before a plot is drawn."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise FaceBoneError(f"{path} needs a suffix such as .png or .pdf to pick the format.")
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise FaceBoneError(
            f"cannot save a plot as .{fmt}; use one of: {', '.join(sorted(supported))}."
        )
    return fmt


def plot_roc(results: dict[str, Any], path: str | Path, model: str | None = None) -> Path:
    """Draw `roc_figure(results, model)` into `path`.

    The file format follows the suffix (.png, .pdf, .svg); the file is replaced atomically.
    """
    path = Path(path)
    fmt = check_plot_format(path)
    figure = roc_figure(results, model)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt)
    return path
