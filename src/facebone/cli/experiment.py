"""`facebone experiment`: the defense comparison and the leakage map, with their reports."""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facebone.cli.common import (
    ATTACK_NAMES,
    LazyNames,
    LazyText,
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    lazy_help,
    open_cache,
    parse_attack_names,
    parse_names,
    require_dir,
)
from facebone.cli.output import emit
from facebone.data.lfw import scan_lfw
from facebone.data.pairs import ROLES, make_protocol, read_pairs
from facebone.errors import FaceBoneError

# The experiments pull in torch and ART: their names and defaults are read only when a help
# shows them or the command runs, so that building the parser stays fast.
DEFENSE_NAMES = LazyNames("facebone.experiments.defenses", "list_defenses")
REGIME_NAMES = LazyNames("facebone.experiments.regimes", "list_regimes")


def _leakage_default(name: str) -> str:
    from facebone.experiments import leakage

    if name == "sizes":
        return ",".join(leakage.size_label(s) for s in leakage.DEFAULT_SIZES)
    return ",".join(str(v) for v in getattr(leakage, f"DEFAULT_{name.upper()}"))


def _compare_shadows() -> int:
    from facebone.experiments.runner import DEFAULT_SHADOWS

    return DEFAULT_SHADOWS


def _leakage_shadows() -> int:
    from facebone.experiments import leakage

    return leakage.DEFAULT_SHADOWS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="compare defenses, or map where the undefended system leaks",
        description="Privacy experiments on one identity-disjoint pair protocol.",
    )
    commands = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")

    compare_parser = commands.add_parser(
        "compare",
        help="every defense x regime: utility and membership attacks",
        description=(
            "Train each defense in each regime on the same splits, measure utility on "
            "target_test, and attack it at pair and identity level. Writes results.json, "
            "report.md and roc-<regime>.png into --out."
        ),
    )
    _common_arguments(compare_parser)
    lazy_help(
        compare_parser.add_argument(
            "--defenses", help="comma-separated defenses (default all: %(names)s)"
        ),
        names=DEFENSE_NAMES,
    )
    lazy_help(
        compare_parser.add_argument(
            "--regimes", help="comma-separated regimes (default all: %(names)s)"
        ),
        names=REGIME_NAMES,
    )
    _attack_arguments(compare_parser, "all", _compare_shadows)
    compare_parser.set_defaults(handler=_run_compare)

    leakage_parser = commands.add_parser(
        "leakage",
        help="attack the undefended nn over training-set sizes and epochs",
        description=(
            "Map the undefended system's membership leakage over training-set size and "
            "training length. Writes results.json, report.md and leakage-heatmap.png into --out."
        ),
    )
    _common_arguments(leakage_parser)
    for name, what in (
        ("sizes", "training pairs per cell, 'all' for every target_train pair"),
        ("epochs", "training epochs per cell"),
    ):
        lazy_help(
            leakage_parser.add_argument(f"--{name}", help=f"{what} (default %(fallback)s)"),
            fallback=LazyText(lambda name=name: _leakage_default(name)),
        )
    _attack_arguments(
        leakage_parser, LazyText(lambda: _leakage_default("attacks")), _leakage_shadows
    )
    leakage_parser.set_defaults(handler=_run_leakage)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_argument(parser)
    parser.add_argument(
        "--pairs-dir",
        type=Path,
        help=f"folder with {', '.join(r + '.csv' for r in ROLES)} (default: make the protocol "
        "with --seed)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_cache_argument(parser)
    add_json_argument(parser)


def _attack_arguments(
    parser: argparse.ArgumentParser, attacks: object, shadows: Callable[[], int]
) -> None:
    """--attacks (unset: `attacks`) and --shadows (unset: `shadows()`)."""
    lazy_help(
        parser.add_argument(
            "--attacks", help="'all' or comma-separated: %(names)s (default %(fallback)s)"
        ),
        names=ATTACK_NAMES,
        fallback=attacks,
    )
    lazy_help(
        parser.add_argument(
            "--shadows",
            type=int,
            help="shadow systems per shadow-based attack (default %(fallback)s)",
        ),
        fallback=LazyText(shadows),
    )


def _protocol(args: argparse.Namespace) -> dict:
    require_dir(args.data, "data folder")
    if args.seed < 0:
        raise FaceBoneError(f"--seed must be 0 or more, got {args.seed}")
    if args.pairs_dir is None:
        return make_protocol(scan_lfw(args.data), seed=args.seed)
    require_dir(args.pairs_dir, "pairs folder")
    return {role: read_pairs(args.pairs_dir / f"{role}.csv", args.data).pairs for role in ROLES}


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FaceBoneError(f"--out {out} exists and is not a folder")


def _run_experiment(
    args: argparse.Namespace,
    experiment: Callable[..., dict[str, Any]],
    write_report: Callable[[dict[str, Any], Path], list[Path]],
    describe: Callable[[dict[str, Any]], tuple[list[str], dict[str, Any]]],
    **options: Any,
) -> int:
    """Check the options every experiment shares, run `experiment(data, protocol, ...,
    **options)`, write results.json and the report into --out, and print a summary:
    `describe(results)` gives its lines and the entries the JSON summary adds."""
    from facebone.experiments.runner import check_shadows, save_results

    attacks = parse_attack_names(args.attacks)
    check_shadows(args.shadows)
    _check_out(args.out)
    protocol = _protocol(args)
    results = experiment(
        args.data,
        protocol,
        attacks=attacks,
        n_shadows=args.shadows,
        seed=args.seed,
        cache=open_cache(args),
        progress=not args.json,
        **options,
    )
    results_path = save_results(results, args.out / "results.json")
    written = [results_path, *write_report(results, args.out)]
    lines, extra = describe(results)
    lines = [
        f"wrote {', '.join(str(p) for p in written)}",
        *lines,
        f"total {results['timings']['total_s']:.0f} s",
    ]
    summary = {
        "out": str(args.out),
        "files": [str(p) for p in written],
        **extra,
        "timings": results["timings"],
    }
    emit(summary, args.json, "\n".join(lines))
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from facebone.experiments.defenses import get_defense
    from facebone.experiments.regimes import get_regime
    from facebone.experiments.report import write_compare_report
    from facebone.experiments.runner import compare

    args.attacks = args.attacks or "all"
    args.shadows = _compare_shadows() if args.shadows is None else args.shadows
    defenses = parse_names(args.defenses, "defenses") if args.defenses else list(DEFENSE_NAMES)
    regimes = parse_names(args.regimes, "regimes") if args.regimes else list(REGIME_NAMES)
    for name in defenses:
        get_defense(name)
    for name in regimes:
        get_regime(name)
    return _run_experiment(
        args,
        compare,
        write_compare_report,
        _describe_compare,
        defenses=defenses,
        regimes=regimes,
    )


def _describe_compare(results: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    goal = results["goal"]
    best = goal["best_defense"]
    lines = []
    for regime, runs in results["runs"].items():
        for defense, run in runs.items():
            lines.append(
                f"{regime:8s} {defense:20s} accuracy {run['utility']['accuracy']:.3f}  "
                f"best AUC pair {run['best']['pair']['auc']:.3f} "
                f"identity {run['best']['identity']['auc']:.3f}"
            )
    lines.append(
        "goal met by: "
        + (", ".join(goal["meeting"]) or "no defended configuration")
        + (f" (best: {best})" if best else "")
    )
    return lines, {"goal": goal}


def _run_leakage(args: argparse.Namespace) -> int:
    from facebone.experiments import leakage
    from facebone.experiments.report import write_leakage_report

    args.attacks = args.attacks or _leakage_default("attacks")
    args.shadows = _leakage_shadows() if args.shadows is None else args.shadows
    sizes = leakage.parse_sizes(args.sizes or _leakage_default("sizes"))
    epochs = leakage.parse_epochs(args.epochs or _leakage_default("epochs"))
    return _run_experiment(
        args,
        leakage.leakage_map,
        write_leakage_report,
        _describe_leakage,
        sizes=sizes,
        epochs=epochs,
    )


def _describe_leakage(results: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    lines = []
    for size in results["sizes"]:
        for n_epochs in results["epochs"]:
            cell = results["cells"][size][str(n_epochs)]
            lines.append(
                f"{size:>5s} pairs {n_epochs:4d} epochs  accuracy {cell['utility']['accuracy']:.3f}"
                f"  best AUC pair {cell['best']['pair']['auc']:.3f} "
                f"identity {cell['best']['identity']['auc']:.3f}"
            )
    return lines, {}
