"""ROC curves of a membership attack run, on a log FPR axis where low-FPR attacks show."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facebone.atomic import atomic_path
from facebone.errors import FaceBoneError

MIN_FPR = 1e-3


def draw_rocs(
    axes,
    curves: Mapping[str, dict[str, Any]],
    title: str,
    legend_loc: str = "lower right",
    legend_size: str = "small",
) -> None:
    """Draw each curve's ROC (`label -> metrics` of `evaluate_scores`) and the chance line
    on `axes`, with FPR on a log axis from `MIN_FPR` to 1."""
    for label, metrics in curves.items():
        fpr = [max(v, MIN_FPR) for v in metrics["roc"]["fpr"]]
        axes.plot(fpr, metrics["roc"]["tpr"], label=label, drawstyle="steps-post")
    chance = np.geomspace(MIN_FPR, 1.0, 100)  # straight y = x needs many points on a log axis
    axes.plot(chance, chance, "k--", linewidth=0.8, label="chance")
    axes.set_xscale("log")
    axes.set_xlim(MIN_FPR, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(title)
    axes.legend(loc=legend_loc, fontsize=legend_size)
    axes.grid(True, which="both", alpha=0.3)


def plot_roc(results: dict[str, Any], path: str | Path) -> Path:
    """Draw one ROC curve per attack of `run_membership_attacks(...)` output into `path`.

    The file format follows the suffix (.png, .pdf, .svg); the file is replaced atomically.
    """
    # A bare Figure renders with Agg and leaves pyplot's global state and backend alone.
    from matplotlib.figure import Figure

    attacks = results.get("attacks") if isinstance(results, dict) else None
    if not attacks:
        raise FaceBoneError("results hold no attacks to plot; pass run_membership_attacks output.")
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise FaceBoneError(f"{path} needs a suffix such as .png or .pdf to pick the format.")
    figure = Figure(figsize=(5.5, 5))
    supported = figure.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise FaceBoneError(
            f"cannot save a plot as .{fmt}; use one of: {', '.join(sorted(supported))}."
        )
    draw_rocs(
        figure.subplots(),
        {f"{name} (AUC {metrics['auc']:.3f})": metrics for name, metrics in attacks.items()},
        f"Membership inference, {results.get('level', 'pair')} level",
    )
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt)
    return path
