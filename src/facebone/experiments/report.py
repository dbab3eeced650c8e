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
from facebone.experiments.runner import LEVELS


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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


def _utility_rows(runs: dict[str, dict]) -> list[list[str]]:
    rows = []
    for defense, run in runs.items():
        utility, privacy, timing = run["utility"], run["privacy"], run["timings"]
        rows.append(
            [
                f"`{defense}`",
                _num(utility["accuracy"]),
                _num(run["train_accuracy"]),
                _num(utility["auc"], 4),
                _num(utility["tar_at_far"]["0.01"]),
                _num(utility["tar_at_far"]["0.001"]),
                _num(privacy["epsilon"], 2),
                "-" if privacy["delta"] is None else f"{privacy['delta']:g}",
                f"{timing['train_s']:.1f}",
                f"{timing['attack_s']:.1f}",
            ]
        )
    return rows


def _attack_rows(runs: dict[str, dict], level: str, attacks: Sequence[str]) -> list[list[str]]:
    rows = []
    for defense, run in runs.items():
        best = run["best"][level]
        rows.append(
            [f"`{defense}`"]
            + [_attack_cell(run["attacks"][level][a]) for a in attacks]
            + [f"{best['attack']}: {_num(best['balanced_accuracy'])} / {_num(best['advantage'])}"]
        )
    return rows


def _goal_lines(results: dict[str, Any]) -> list[str]:
    goal = results["goal"]
    criteria = goal["criteria"]
    regimes = list(results["runs"])
    lines = [
        "## Goal",
        "",
        f"A defended configuration meets the goal when, in every regime run ({', '.join(regimes)}),"
        f" its utility accuracy is at least {criteria['min_accuracy']}, and the strongest attack"
        f" (every attack, pair and identity level) has ROC AUC at most {criteria['max_auc']} and"
        f" TPR at 1% FPR at most {_pct(criteria['max_tpr_at_1pct_fpr'])}.",
        "",
    ]
    best = goal["best_defense"]
    if best is None:
        lines.append(
            "**No defended configuration meets the goal as stated.** The table says which part "
            "each one misses."
        )
    else:
        others = [d for d in goal["meeting"] if d != best]
        lines.append(
            f"**Best defended configuration: `{best}`** "
            f"(worst-regime accuracy {goal['defenses'][best]['min_accuracy']:.3f})."
            + (f" Also meeting the goal: {', '.join(f'`{d}`' for d in others)}." if others else "")
        )
    lines.append("")
    noisy = goal["best_within_chance"]
    lines.append(
        "Allowing for measurement noise (an attack figure above the goal but below what the "
        f"strongest attack at chance reaches with probability {1 - goal['chance_alpha']:.0%} on "
        "these members and non-members): "
        + (
            f"best `{noisy}`; meeting: "
            + ", ".join(f"`{d}`" for d in goal["meeting_within_chance"])
            + "."
            if noisy
            else "still no defended configuration."
        )
    )
    multi = [d for d in goal["defenses"] if d.startswith("multi-")]
    if multi:
        passing = [d for d in multi if goal["defenses"][d]["meets"]]
        lines.append(
            "Multi-backbone mitigation: "
            + (
                f"{', '.join(f'`{d}`' for d in passing)} meet the goal."
                if passing
                else "no multi-backbone variant meets the goal."
            )
        )
    lines.append("")
    header = [
        "defense",
        *[f"{r}: acc / max AUC / max TPR@1%" for r in regimes],
        "meets",
        "within chance",
        "misses beyond chance",
    ]
    rows = []
    for defense, entry in goal["defenses"].items():
        cells = []
        for regime in regimes:
            figures = entry["regimes"].get(regime)
            cells.append(
                "-"
                if figures is None
                else f"{figures['accuracy']:.3f} / {figures['max_auc']:.3f} / "
                f"{_pct(figures['max_tpr_at_1pct_fpr'])}"
            )
        beyond = [
            f"{regime}: {reason}"
            for regime, figures in entry["regimes"].items()
            for reason in figures["fails_beyond_chance"]
        ]
        rows.append(
            [
                f"`{defense}`",
                *cells,
                "yes" if entry["meets"] else "no",
                "yes" if entry["meets_within_chance"] else "no",
                "; ".join(beyond[:3]) + (f"; +{len(beyond) - 3} more" if len(beyond) > 3 else ""),
            ]
        )
    return lines + _table(header, rows)


def compare_markdown(results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    attacks = results["attacks"]
    shadows = results["n_shadows"]
    lines = [
        "# FaceBone: defenses compared on the same splits",
        "",
        f"Data `{results['data']}`, seed {results['seed']}, pairs per role: "
        + ", ".join(f"{role} {n}" for role, n in results["protocol"].items())
        + f". Attacks: {', '.join(attacks)}; shadows per shadow-based attack: "
        + ("each attack's default" if shadows is None else str(shadows))
        + f". Total run time {results['timings']['total_s']:.0f} s "
        f"({results['torch_threads']} torch thread).",
        "",
        "Members are exactly the target's training pairs; non-members are target_test pairs "
        "(identity-disjoint from members and from the attacker's pairs). Attacks are trained "
        "only on shadows of the attacker's pairs. At identity level a person's score is the mean "
        "score of their candidate pairs; non-member people are those of a target_test subset "
        "drawn like the training set, so both sides have as many pairs per person.",
        "",
    ]
    lines += _goal_lines(results)
    lines += ["## Defenses", ""]
    lines += _table(
        ["defense", "configuration"],
        [[f"`{name}`", d["description"]] for name, d in results["defenses"].items()],
    )
    for regime, runs in results["runs"].items():
        info = results["regimes"][regime]
        any_run = next(iter(runs.values()))
        lines += [
            f"## Regime `{regime}`: {info['description']}",
            "",
            f"{any_run['n_train']} training pairs (members), {any_run['n_test']} non-member "
            f"pairs, attacker pairs {any_run['n_attacker']} (each shadow trains on about half). "
            f"nn options: {info['nn_params'] or 'defaults'}.",
            "",
            "### Utility on target_test",
            "",
        ]
        lines += _table(
            [
                "defense",
                "accuracy",
                "train acc",
                "ROC AUC",
                "TAR@FAR1e-2",
                "TAR@FAR1e-3",
                "DP ε",
                "DP δ",
                "train s",
                "attack s",
            ],
            _utility_rows(runs),
        )
        for level in LEVELS:
            chance = any_run["chance"][level]
            n_in = any_run["attacks"][level][attacks[0]]["n_members"]
            n_out = any_run["attacks"][level][attacks[0]]["n_nonmembers"]
            lines += [
                f"### Attacks, {level} level ({n_in} members, {n_out} non-members)",
                "",
                "Each cell: ROC AUC / TPR at 1% FPR / TPR at 0.1% FPR. The strongest of all "
                f"attacks at chance stays below AUC {chance['auc']:.3f}, TPR@1%FPR "
                f"{_pct(chance['tpr_at_fpr']['0.01'])}, TPR@0.1%FPR "
                f"{_pct(chance['tpr_at_fpr']['0.001'])} (95%, Bonferroni over attacks and "
                "levels). Last column: the strongest attack's balanced accuracy (at its "
                "shadow-chosen cut) / advantage.",
                "",
            ]
            lines += _table(
                ["defense", *attacks, "best: bal. acc / adv."],
                _attack_rows(runs, level, attacks),
            )
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def plot_best_rocs(results: dict[str, Any], regime: str, path: Path) -> Path:
    """One panel per level: each defense's strongest attack (by AUC), log FPR axis."""
    from matplotlib.figure import Figure

    runs = results["runs"][regime]
    figure = Figure(figsize=(11, 5))
    for axes, level in zip(figure.subplots(1, 2), LEVELS, strict=True):
        curves = {}
        for defense, run in runs.items():
            best = run["best"][level]["attack"]
            metrics = run["attacks"][level][best]
            curves[f"{defense}: {best} (AUC {metrics['auc']:.2f})"] = metrics
        draw_rocs(
            axes,
            curves,
            f"regime {regime}, {level} level: strongest attack per defense",
            # Upper left is where no ROC goes (low FPR, high TPR); the low-FPR tail stays visible.
            legend_loc="upper left",
            legend_size="x-small",
        )
    figure.tight_layout()
    return _save(figure, path)


def write_compare_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """`report.md` and one ROC plot per regime into `out`; returns the paths written."""
    out = Path(out)
    plots = [
        plot_best_rocs(results, regime, out / f"roc-{regime}.png") for regime in results["runs"]
    ]
    report = out / "report.md"
    write_text_atomic(report, compare_markdown(results, [p.name for p in plots]))
    return [report, *plots]


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
            size: next(iter(results["cells"][size].values()))["chance"][level]
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
