"""The report's figures as PNG bytes: log-scale ROC curves (drawn by `attacks.plot`), the
privacy-utility frontier and the leakage heatmap. Bare matplotlib `Figure`s render with Agg
and leave pyplot's global state alone."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facebone.attacks.membership.plot import draw_rocs
from facebone.experiments.defenses import display_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
PANEL_COLUMNS = 3
TAB10 = 10


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def roc_panels(panels: Mapping[str, Mapping[str, dict[str, Any]]], title: str) -> bytes:
    """One log-FPR ROC panel per entry of `panels` (`panel title -> {curve label ->
    metrics with "roc"}`), three to a row."""
    from matplotlib.figure import Figure

    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5.2 * columns, 4.4 * rows), layout="constrained")
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    from matplotlib import colormaps

    for axes, (panel, curves) in zip(axes_grid, panels.items(), strict=False):
        if len(curves) > TAB10:  # beyond ten curves the default colours repeat
            axes.set_prop_cycle(color=colormaps["tab20"].colors)
        draw_rocs(axes, curves, panel, legend_loc="lower right", legend_size="xx-small")
    for axes in axes_grid[len(panels) :]:
        axes.set_visible(False)
    figure.suptitle(title)
    return png_bytes(figure)


# A frontier point's colour: the goal met; inside the plotted part of the goal (accuracy and
# AUC) but failing another criterion (TPR at low FPR, canaries); outside it.
FRONTIER_COLOURS = {"meets": "tab:green", "inside": "tab:orange", "fails": "tab:red"}


def frontier_status(point: Mapping[str, Any], goal: Mapping[str, Any]) -> str:
    """Which of `FRONTIER_COLOURS` a point of `verdict.frontier` is drawn in."""
    if point["meets_goal"]:
        return "meets"
    inside = point["accuracy"] >= goal["min_accuracy"] and point["attack_auc"] <= goal["max_auc"]
    return "inside" if inside else "fails"


def frontier(points: Sequence[Mapping[str, Any]], goal: Mapping[str, Any]) -> bytes:
    """Accuracy against the strongest attack's AUC per (regime, defense) point of
    `verdict.frontier`. The shaded box is the goal's accuracy and AUC criteria (the region
    up to `max_auc` and from `min_accuracy` up); a point there may still fail the goal's
    other criteria, and is drawn orange, not green."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(7.5, 5.5), layout="constrained")
    axes = figure.subplots()
    regimes = list(dict.fromkeys(point["regime"] for point in points))
    markers = dict(zip(regimes, "os^Dv<>", strict=False))
    for point in points:
        axes.scatter(
            point["attack_auc"],
            point["accuracy"],
            marker=markers.get(point["regime"], "o"),
            color=FRONTIER_COLOURS[frontier_status(point, goal)],
        )
        label = display_name(point["defense"])
        label += f" ({point['regime']})" if len(regimes) > 1 else ""
        axes.annotate(
            label,
            (point["attack_auc"], point["accuracy"]),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    # The goal's box, drawn over the data's extent once the points have set it.
    left, _ = axes.get_xlim()
    _, top = axes.get_ylim()
    axes.fill_between(
        [min(left, goal["max_auc"]), goal["max_auc"]],
        goal["min_accuracy"],
        max(top, goal["min_accuracy"]),
        color="tab:green",
        alpha=0.08,
        linewidth=0,
    )
    axes.axhline(goal["min_accuracy"], color="tab:green", linestyle="--", linewidth=0.8)
    axes.axvline(goal["max_auc"], color="tab:green", linestyle="--", linewidth=0.8)
    axes.set_xlim(left=min(left, goal["max_auc"]))
    axes.set_ylim(top=max(top, goal["min_accuracy"]))
    texts = {
        "meets": "meets the goal",
        "inside": "in the box, fails TPR or canaries",
        "fails": "fails the goal",
    }
    handles = [
        Line2D([], [], marker="o", linestyle="", color=FRONTIER_COLOURS[k], label=text)
        for k, text in texts.items()
    ]
    handles += [
        Line2D([], [], marker=markers[r], linestyle="", color="grey", label=r)
        for r in regimes
        if len(regimes) > 1
    ]
    axes.legend(handles=handles, fontsize="x-small", loc="lower right")
    axes.set_xlabel("strongest attack AUC (mean over seeds)")
    axes.set_ylabel("accuracy on identity-disjoint test pairs")
    axes.set_title(
        "privacy-utility frontier (shaded: the goal's accuracy and AUC)", fontsize="medium"
    )
    axes.grid(True, alpha=0.3)
    return png_bytes(figure)


def heatmap(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    rows: Sequence[str],
    columns: Sequence[str],
    axis_labels: tuple[str, str],
) -> bytes:
    """One AUC heatmap per panel (`title -> (auc, tpr at 1% FPR)`, shape rows x columns),
    each cell annotated with both."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6 * len(panels), 4.8), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)).ravel()
    image = None
    for axes, (title, (auc, tpr)) in zip(grid, panels.items(), strict=True):
        image = axes.imshow(auc, cmap="magma", vmin=0.4, vmax=1.0, aspect="auto")
        for i in range(auc.shape[0]):
            for j in range(auc.shape[1]):
                axes.text(
                    j,
                    i,
                    f"{auc[i, j]:.3f}\n{100 * tpr[i, j]:.0f}% @1%",
                    ha="center",
                    va="center",
                    color="white" if auc[i, j] < 0.75 else "black",
                    fontsize="small",
                )
        axes.set_xticks(range(len(columns)), list(columns))
        axes.set_yticks(range(len(rows)), list(rows))
        axes.set_xlabel(axis_labels[0])
        axes.set_ylabel(axis_labels[1])
        axes.set_title(title, fontsize="medium")
    figure.colorbar(image, ax=list(grid), label="ROC AUC")
    return png_bytes(figure)
