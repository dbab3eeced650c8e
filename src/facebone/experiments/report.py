"""Markdown reports and plots of the comparison and of the leakage map, written atomically.

`write_compare_report(results, out)` writes `report.md` and `roc-<regime>.png` (for each
defense, the ROC of its strongest attack, on a log FPR axis, at pair and identity level);
`write_leakage_report(results, out)` writes `report.md` and `leakage-heatmap.png`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facebone.atomic import atomic_path, write_text_atomic
from facebone.attacks.plot import draw_rocs
from facebone.attacks.runner import LEVELS
from facebone.experiments.statistics import chance_band


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _attack_cell(metrics: dict[str, Any]) -> str:
    tpr = metrics["tpr_at_fpr"]
    return f"{metrics['auc']:.3f} / {_pct(tpr['0.01'])} / {_pct(tpr['0.001'])}"


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return path


# ---- the comparison --------------------------------------------------------------------------


def _ms(entry: dict[str, float], digits: int = 3, percent: bool = False) -> str:
    """`mean ± sd` (the sd only over several seeds)."""
    if percent:
        text = f"{100 * entry['mean']:.1f}%"
        return text + (f" ± {100 * entry['sd']:.1f}" if entry.get("n", 1) > 1 else "")
    text = f"{entry['mean']:.{digits}f}"
    return text + (f" ± {entry['sd']:.{digits}f}" if entry.get("n", 1) > 1 else "")


def verdict_lines(results: dict[str, Any]) -> list[str]:
    """The plain statement of which defenses meet the goal, and the recommendation."""
    goal = results["goal"]
    criteria = goal["criteria"]
    lines = [
        f"Goal: accuracy >= {criteria['min_accuracy']} on identity-disjoint pairs; against "
        f"every attack at pair and identity level AUC <= {criteria['max_auc']}, TPR at 1% FPR "
        f"<= {100 * criteria['max_tpr_at_fpr']['0.01']:g}%, TPR at 0.1% FPR <= "
        f"{100 * criteria['max_tpr_at_fpr']['0.001']:g}%; canary TPR at 1% FPR <= "
        f"{100 * criteria['max_canary_tpr_at_1pct_fpr']:g}%; in every regime, as means over "
        "seeds.",
        "",
    ]
    meeting = goal["meeting"]
    failing = [d for d in goal["defenses"] if d not in meeting]
    lines.append(
        "**Meet the goal:** " + (", ".join(f"`{d}`" for d in meeting) or "no defense") + "."
    )
    lines.append("**Do not:** " + (", ".join(f"`{d}`" for d in failing) or "none") + ".")
    best = goal["best_defense"]
    lines.append(f"**Recommended:** `{best}`." if best else "**Recommended:** none meets the goal.")
    lines.append("")
    return lines


def _verdict_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for defense, entry in results["goal"]["defenses"].items():
        for regime, judged in entry["regimes"].items():
            summary = results["summary"][regime][defense]
            worst = judged["worst"]
            canary = results.get("canaries", {}).get(regime, {}).get(defense)
            rows.append(
                [
                    f"`{defense}`",
                    regime,
                    _ms(summary["accuracy"]),
                    f"{_ms(worst['auc'])} ({worst['auc']['attack']}, {worst['auc']['level']})",
                    _ms(worst["0.01"], percent=True),
                    _ms(worst["0.001"], percent=True),
                    "-" if canary is None else _ms(canary["tpr_at_fpr"]["0.01"], percent=True),
                    "yes" if judged["meets"] else "no",
                    "yes" if judged["meets_within_chance"] else "no",
                ]
            )
    return rows


def _chance_rows(results: dict[str, Any]) -> list[list[str]]:
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
                    _pct(chance["tpr_at_fpr"]["0.01"]),
                    _pct(chance["tpr_at_fpr"]["0.001"]),
                ]
            )
    return rows


def _attack_rows(results: dict[str, Any], regime: str, level: str) -> list[list[str]]:
    rows = []
    for defense, entry in results["summary"][regime].items():
        for name, metrics in entry["levels"][level]["attacks"].items():
            rows.append(
                [
                    f"`{defense}`",
                    name,
                    _ms(metrics["auc"]),
                    _ms(metrics["advantage"]),
                    _ms(metrics["tpr_at_fpr"]["0.01"], percent=True),
                    _ms(metrics["tpr_at_fpr"]["0.001"], percent=True),
                    str(metrics["shadows"]),
                    str(metrics["queries"]),
                ]
            )
    return rows


def _utility_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for regime, by_defense in results["summary"].items():
        for defense, entry in by_defense.items():
            tuning = [r["privacy"]["tuning"] for r in results["runs"][regime][defense]]
            dp = "-"
            if entry["epsilon"] is not None:
                dp = f"ε {entry['epsilon']['mean']:.2f}, δ {entry['delta']:g}"
                if tuning[0]:
                    dp += f"; clip {tuning[0]['max_grad_norm']:g}, {tuning[0]['epochs']} epochs"
            rows.append(
                [
                    f"`{defense}`",
                    regime,
                    _ms(entry["accuracy"]),
                    _ms(entry["train_accuracy"]),
                    _ms(entry["utility_auc"], 4),
                    dp,
                    f"{entry['time_s']['mean']:.0f} s",
                ]
            )
    return rows


def _canary_rows(canaries: dict[str, Any]) -> list[list[str]]:
    rows = []
    for regime, by_defense in canaries.items():
        for defense, entry in by_defense.items():
            rows.append(
                [
                    f"`{defense}`",
                    regime,
                    _ms(entry["auc"]),
                    _ms(entry["tpr_at_fpr"]["0.01"], percent=True),
                    _ms(entry["tpr_at_fpr"]["0.001"], percent=True),
                    _ms(entry["by_kind"]["mislabeled"]["0.01"], percent=True),
                    _ms(entry["by_kind"]["atypical"]["0.01"], percent=True),
                    f"{entry['n_canaries']} x {entry['n_targets']}",
                ]
            )
    return rows


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


def compare_markdown(results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    seeds = ", ".join(f"{r}: {', '.join(map(str, s))}" for r, s in results["seeds"].items())
    lines = [
        "# FaceBone defense comparison",
        "",
        *verdict_lines(results),
        f"Split seeds ({seeds}); attacks: {', '.join(results['attacks'])}; figures are means "
        f"± sd over seeds; {results['timings']['total_s']:.0f} s in all "
        f"({results['torch_threads']} torch thread).",
        "",
        "## Verdict (strongest attack over both levels)",
        "",
        *_table(
            (
                "defense",
                "regime",
                "accuracy",
                "strongest AUC",
                "TPR@1%FPR",
                "TPR@0.1%FPR",
                "canary TPR@1%",
                "meets goal",
                "within chance",
            ),
            _verdict_rows(results),
        ),
        "## Chance band (strongest of all attack evaluations at chance, p = 0.05)",
        "",
        *_table(
            ("regime", "level", "seeds", "members / non-members", "AUC", "TPR@1%", "TPR@0.1%"),
            _chance_rows(results),
        ),
        "## Utility",
        "",
        *_table(
            ("defense", "regime", "accuracy", "train accuracy", "AUC", "DP", "time / seed"),
            _utility_rows(results),
        ),
    ]
    if results.get("canaries"):
        lines += ["## Canary audit", "", *_table(CANARY_HEADER, _canary_rows(results["canaries"]))]
    for regime in results["summary"]:
        for level in LEVELS:
            lines += [
                f"## Attacks, {regime} regime, {level} level",
                "",
                *_table(
                    (
                        "defense",
                        "attack",
                        "AUC",
                        "advantage",
                        "TPR@1%",
                        "TPR@0.1%",
                        "shadows",
                        "queries",
                    ),
                    _attack_rows(results, regime, level),
                ),
            ]
    why = results["goal"]["defenses"]
    lines += ["## Why each defense fails", ""]
    for defense, entry in why.items():
        for regime, judged in entry["regimes"].items():
            if judged["fails"]:
                shown = "; ".join(judged["fails"][:4])
                more = len(judged["fails"]) - 4
                lines.append(
                    f"- `{defense}` ({regime}): {shown}" + (f"; {more} more" if more > 0 else "")
                )
    lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def plot_best_rocs(results: dict[str, Any], regime: str, path: Path) -> Path:
    """One panel per level: each defense's strongest attack (by mean AUC), its ROC on the
    first seed, log FPR axis."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 5.5))
    for axes, level in zip(figure.subplots(1, 2), LEVELS, strict=True):
        curves = {}
        for defense, entry in results["summary"][regime].items():
            attacks = entry["levels"][level]["attacks"]
            best = max(attacks, key=lambda a: attacks[a]["auc"]["mean"])
            first_run = results["runs"][regime][defense][0]
            curves[f"{defense}: {best} ({attacks[best]['auc']['mean']:.2f})"] = first_run[
                "attacks"
            ][level][best]
        draw_rocs(
            axes,
            curves,
            f"{regime} regime, {level} level: strongest attack per defense",
            legend_loc="upper left",
            legend_size="xx-small",
        )
    figure.tight_layout()
    return _save(figure, path)


def plot_frontier(results: dict[str, Any], path: Path) -> Path:
    """Accuracy against the strongest attack's AUC per defense and regime, goal shaded."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 5.5))
    axes = figure.subplots()
    criteria = results["goal"]["criteria"]
    axes.axvspan(0.45, criteria["max_auc"], ymin=0, ymax=1, color="tab:green", alpha=0.08)
    axes.axhline(criteria["min_accuracy"], color="tab:green", linestyle="--", linewidth=0.8)
    axes.axvline(criteria["max_auc"], color="tab:green", linestyle="--", linewidth=0.8)
    markers = {"default": "o", "leaking": "s"}
    for point in results["frontier"]:
        axes.scatter(
            point["attack_auc"],
            point["accuracy"],
            marker=markers.get(point["regime"], "^"),
            color="tab:green" if point["meets_goal"] else "tab:red",
        )
        axes.annotate(
            f"{point['defense']} ({point['regime'][0]})",
            (point["attack_auc"], point["accuracy"]),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    axes.set_xlabel("strongest attack AUC (mean over seeds)")
    axes.set_ylabel("accuracy on identity-disjoint test pairs")
    axes.set_title("privacy-utility frontier (green: meets the goal; o default, s leaking)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def write_compare_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """`report.md`, one ROC plot per regime and the frontier into `out`; the paths written."""
    out = Path(out)
    plots = [
        plot_best_rocs(results, regime, out / f"roc-{regime}.png") for regime in results["summary"]
    ]
    plots.append(plot_frontier(results, out / "frontier.png"))
    report = out / "report.md"
    write_text_atomic(report, compare_markdown(results, [p.name for p in plots]))
    return [report, *plots]


def write_canary_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """`report.md` of `facebone experiment canaries`."""
    report = Path(out) / "report.md"
    lines = [
        "# FaceBone canary audit",
        "",
        f"Split seeds {', '.join(map(str, results['seeds']))}; "
        f"{results['timings']['total_s']:.0f} s.",
        "",
        *_table(CANARY_HEADER, _canary_rows(results["canaries"])),
    ]
    write_text_atomic(report, "\n".join(lines))
    return [report]


# ---- the leakage map ---------------------------------------------------------------------------


def _cell_rows(results: dict[str, Any], value: Callable[[dict], Any]) -> list[list[Any]]:
    """`value(cell)` for each cell of the map: a row per size, a column per epoch count."""
    return [
        [value(results["cells"][size][str(e)]) for e in results["epochs"]]
        for size in results["sizes"]
    ]


def _grid(results: dict[str, Any], value: Callable[[dict], float]) -> np.ndarray:
    return np.array(_cell_rows(results, value))


def _cell_table(results: dict[str, Any], text: Callable[[dict], str]) -> list[str]:
    """A sizes x epochs table of `text(cell)`."""
    return _table(
        ["pairs \\ epochs", *map(str, results["epochs"])],
        [
            [size, *row]
            for size, row in zip(results["sizes"], _cell_rows(results, text), strict=True)
        ],
    )


def _best_cell(best: dict[str, Any]) -> str:
    return (
        f"{best['auc']:.3f} ({best['attack']}) / {_pct(best['max_tpr_at_fpr']['0.01'])} / "
        f"{_pct(best['max_tpr_at_fpr']['0.001'])}"
    )


def _chance(run: dict[str, Any], level: str) -> dict[str, Any]:
    """The chance band of one run's strongest attack at `level` (all its attacks, both
    levels, one seed)."""
    attacks = run["attacks"][level]
    counts = next(iter(attacks.values()))
    return chance_band(counts["n_members"], counts["n_nonmembers"], 1, len(attacks) * len(LEVELS))


def leakage_markdown(results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    attacks = results["attacks"]
    epochs = results["epochs"]
    lines = [
        "# FaceBone: where the undefended nn predictor leaks",
        "",
        f"SFace + nn, weight decay {results['weight_decay']:g}, trained on a balanced subset of "
        f"target_train ({', '.join(results['sizes'])} pairs) for {', '.join(map(str, epochs))} "
        f"epochs; attacks {', '.join(attacks)} with "
        + ("default" if results["n_shadows"] is None else str(results["n_shadows"]))
        + f" shadows each. Data `{results['data']}`, seed {results['seed']}; total run time "
        f"{results['timings']['total_s']:.0f} s.",
        "",
        "## Utility: test accuracy (train accuracy)",
        "",
    ]
    lines += _cell_table(
        results, lambda c: f"{c['utility']['accuracy']:.3f} ({c['train_accuracy']:.3f})"
    )
    for level in LEVELS:
        chances = {
            size: _chance(next(iter(results["cells"][size].values())), level)
            for size in results["sizes"]
        }
        lines += [
            f"## {level.capitalize()} level",
            "",
            "Each cell: the highest AUC over the attacks (and which attack) / the highest TPR at "
            "1% FPR / at 0.1% FPR over the attacks. The strongest attack at chance stays below "
            + "; ".join(
                f"{size} pairs: AUC {c['auc']:.3f}, TPR@1% {_pct(c['tpr_at_fpr']['0.01'])}"
                for size, c in chances.items()
            )
            + " (95%, Bonferroni).",
            "",
        ]
        lines += _cell_table(results, lambda c, level=level: _best_cell(c["best"][level]))
        lines += [f"Per attack, {level} level (AUC / TPR@1% / TPR@0.1%):", ""]
        lines += _table(
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
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def plot_leakage_heatmap(results: dict[str, Any], path: Path) -> Path:
    """Strongest attack's AUC per (size, epochs), one panel per level, TPR@1% annotated."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.8))
    panels = figure.subplots(1, 2)
    image = None
    for axes, level in zip(panels, LEVELS, strict=True):
        auc = _grid(results, lambda c, level=level: c["best"][level]["auc"])
        tpr = _grid(results, lambda c, level=level: c["best"][level]["max_tpr_at_fpr"]["0.01"])
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
        axes.set_xticks(range(len(results["epochs"])), [str(e) for e in results["epochs"]])
        axes.set_yticks(range(len(results["sizes"])), results["sizes"])
        axes.set_xlabel("epochs")
        axes.set_ylabel("training pairs")
        axes.set_title(f"{level} level: best AUC (best TPR at 1% FPR)", fontsize="medium")
    figure.colorbar(image, ax=list(panels), label="ROC AUC")
    return _save(figure, path)


def write_leakage_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """`report.md` and `leakage-heatmap.png` into `out`; returns the paths written."""
    out = Path(out)
    heatmap = plot_leakage_heatmap(results, out / "leakage-heatmap.png")
    report = out / "report.md"
    write_text_atomic(report, leakage_markdown(results, [heatmap.name]))
    return [report, heatmap]
