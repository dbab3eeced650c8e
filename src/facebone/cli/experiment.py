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


def _compare_shadows() -> int | None:
    from facebone.experiments.runner import DEFAULT_SHADOWS

    return DEFAULT_SHADOWS


def _leakage_shadows() -> int | None:
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
            "report.html (self-contained), report.md and its figures into --out."
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
    _seed_arguments(compare_parser)
    _canary_arguments(
        compare_parser, "the canary audit of each defense on each regime's first seed"
    )
    compare_parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that train and attack systems side by side (default 1; one per core "
        "is fastest, at one core's memory each)",
    )
    compare_parser.add_argument(
        "--quick",
        action="store_true",
        help="a preset that runs in a few minutes: six defenses, one seed per regime, three "
        "attacks with 16 shadows, a small canary audit (options given explicitly still win)",
    )
    compare_parser.set_defaults(handler=_run_compare)

    canary_parser = commands.add_parser(
        "canaries",
        help="canary audit: plant vulnerable pairs, train many targets, find the canaries",
        description=(
            "Plant mislabeled and atypical canary pairs (from target_test people) into the "
            "training set of --targets systems of each defense, each with a random half of "
            "the canaries, and attack every target with online LiRA using the others as "
            "references. Writes results.json, report.html and report.md into --out."
        ),
    )
    _common_arguments(canary_parser)
    lazy_help(
        canary_parser.add_argument(
            "--defenses", help="comma-separated defenses (default all: %(names)s)"
        ),
        names=DEFENSE_NAMES,
    )
    canary_parser.add_argument(
        "--regimes", default="default", help="comma-separated regimes (default: default)"
    )
    canary_parser.add_argument(
        "--seeds", default="0", help="comma-separated split seeds (default 0)"
    )
    _canary_arguments(canary_parser, "")
    canary_parser.set_defaults(handler=_run_canaries)

    leakage_parser = commands.add_parser(
        "leakage",
        help="attack the undefended nn over training-set sizes and epochs",
        description=(
            "Map the undefended system's membership leakage over training-set size and "
            "training length. Writes results.json, report.html, report.md and its heatmap into "
            "--out."
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
    leakage_parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    leakage_parser.set_defaults(handler=_run_leakage)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_argument(parser)
    parser.add_argument(
        "--pairs-dir",
        type=Path,
        help=f"folder with {', '.join(r + '.csv' for r in ROLES)} (default: make the protocol "
        "of each split seed)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    add_cache_argument(parser)
    add_json_argument(parser)


def _attack_arguments(
    parser: argparse.ArgumentParser, attacks: object, shadows: Callable[[], int | None]
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
        fallback=LazyText(lambda: _shadow_text(shadows())),
    )


def _shadow_text(count: int | None) -> str:
    if count is None:
        return "each attack's own: 64 for lira-online, 16 for lira, 4 for the others"
    return str(count)


def _seed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        help="comma-separated split seeds of the default regime (default 0,1,2)",
    )
    parser.add_argument(
        "--leaking-seeds",
        help="comma-separated split seeds of the leaking regime (default 0,1,2,3,4: with 100 "
        "members one seed scatters by about +-0.03 AUC)",
    )


def _canary_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--canaries",
        type=int,
        help=f"canaries planted, a multiple of 4; 0 skips {what or 'nothing'} (default 64)",
    )
    parser.add_argument(
        "--targets",
        type=int,
        help="systems trained per defense in the canary audit (default 32)",
    )


def _protocol_for(args: argparse.Namespace) -> Callable[[int], dict]:
    """The pair protocol of a split seed: made from --data with that seed, or read from
    --pairs-dir (the same splits for every seed; only training and subsets vary)."""
    require_dir(args.data, "data folder")
    if args.pairs_dir is not None:
        require_dir(args.pairs_dir, "pairs folder")
        fixed = {r: read_pairs(args.pairs_dir / f"{r}.csv", args.data).pairs for r in ROLES}
        return lambda seed: fixed
    images = scan_lfw(args.data)
    return lambda seed: make_protocol(images, seed=seed)


def _seed_list(text: str, flag: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise FaceBoneError(f"{flag} must be comma-separated whole numbers, got {text!r}") from None
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise FaceBoneError(f"{flag} must be distinct seeds of 0 or more, got {text!r}")
    return seeds


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
    """Check the options every experiment shares, run `experiment(data, protocol_for, ...,
    **options)`, write results.json and the report into --out, and print a summary:
    `describe(results)` gives its lines and the entries the JSON summary adds."""
    from facebone.experiments.runner import check_shadows, save_results

    attacks = parse_attack_names(args.attacks)
    check_shadows(args.shadows)
    _check_out(args.out)
    results = experiment(
        args.data,
        _protocol_for(args),
        attacks=attacks,
        n_shadows=args.shadows,
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
    from facebone.experiments.runner import DEFAULT_SEEDS, QUICK, compare
    from facebone.reports.experiments import write_compare_report

    preset = QUICK if args.quick else {}
    args.attacks = args.attacks or ",".join(preset.get("attacks", ["all"]))
    if args.shadows is None:
        args.shadows = preset.get("n_shadows", _compare_shadows())
    if args.defenses:
        defenses = parse_names(args.defenses, "defenses")
    else:
        defenses = list(preset.get("defenses", DEFENSE_NAMES))
    regimes = parse_names(args.regimes, "regimes") if args.regimes else list(REGIME_NAMES)
    for name in defenses:
        get_defense(name)
    for name in regimes:
        get_regime(name)
    seeds = dict(preset.get("seeds", DEFAULT_SEEDS))
    if args.seeds:
        seeds["default"] = _seed_list(args.seeds, "--seeds")
    if args.leaking_seeds:
        seeds["leaking"] = _seed_list(args.leaking_seeds, "--leaking-seeds")
    if args.workers < 1:
        raise FaceBoneError(f"--workers must be 1 or more, got {args.workers}")
    canaries = {
        option: value
        for option, value in (
            ("n_canaries", _given(args.canaries, preset.get("n_canaries"))),
            ("n_canary_targets", _given(args.targets, preset.get("n_canary_targets"))),
        )
        if value is not None
    }
    return _run_experiment(
        args,
        compare,
        write_compare_report,
        _describe_compare,
        defenses=defenses,
        regimes=regimes,
        seeds=seeds,
        workers=args.workers,
        **canaries,
    )


def _given(value: int | None, preset: int | None) -> int | None:
    return value if value is not None else preset


def _run_canaries(args: argparse.Namespace) -> int:
    from facebone.experiments.canaries import canary_experiment
    from facebone.experiments.defenses import get_defense
    from facebone.experiments.regimes import get_regime
    from facebone.experiments.runner import save_results
    from facebone.reports.experiments import write_canary_report

    defenses = parse_names(args.defenses, "defenses") if args.defenses else list(DEFENSE_NAMES)
    regimes = [get_regime(name).name for name in parse_names(args.regimes, "regimes")]
    for name in defenses:
        get_defense(name)
    _check_out(args.out)
    results = canary_experiment(
        args.data,
        _protocol_for(args),
        defenses=defenses,
        regimes=regimes,
        seeds=_seed_list(args.seeds, "--seeds"),
        n_canaries=64 if args.canaries is None else args.canaries,
        n_targets=32 if args.targets is None else args.targets,
        cache=open_cache(args),
        progress=not args.json,
    )
    written = [
        save_results(results, args.out / "results.json"),
        *write_canary_report(results, args.out),
    ]
    lines = [f"wrote {', '.join(str(p) for p in written)}"]
    for regime, by_defense in results["canaries"].items():
        for defense, entry in by_defense.items():
            lines.append(
                f"{regime:8s} {defense:22s} canary AUC {entry['auc']['mean']:.3f}  "
                f"TPR@1%FPR {entry['tpr_at_fpr']['0.01']['mean']:6.1%}  "
                f"TPR@0.1%FPR {entry['tpr_at_fpr']['0.001']['mean']:6.1%}"
            )
    lines.append(f"total {results['timings']['total_s']:.0f} s")
    emit(
        {"out": str(args.out), "files": [str(p) for p in written], "canaries": results["canaries"]},
        args.json,
        "\n".join(lines),
    )
    return 0


def _describe_compare(results: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    goal = results["goal"]
    best = goal["best_defense"]
    lines = []
    for defense, entry in goal["defenses"].items():
        for regime, judged in entry["regimes"].items():
            worst = judged["worst"]
            lines.append(
                f"{regime:8s} {defense:22s} accuracy {judged['accuracy']:.3f}  strongest attack "
                f"AUC {worst['auc']['mean']:.3f} ({worst['auc']['attack']}, "
                f"{worst['auc']['level']})  TPR@1%FPR {worst['0.01']['mean']:.1%}  "
                f"{'meets the goal' if judged['meets'] else 'fails'}"
            )
    lines.append(
        "goal met by: "
        + (", ".join(goal["meeting"]) or "no defended configuration")
        + (f" (recommended: {best})" if best else "")
    )
    return lines, {"goal": goal}


def _run_leakage(args: argparse.Namespace) -> int:
    from facebone.experiments import leakage
    from facebone.reports.experiments import write_leakage_report

    args.attacks = args.attacks or _leakage_default("attacks")
    args.shadows = _leakage_shadows() if args.shadows is None else args.shadows
    sizes = leakage.parse_sizes(args.sizes or _leakage_default("sizes"))
    epochs = leakage.parse_epochs(args.epochs or _leakage_default("epochs"))
    if args.seed < 0:
        raise FaceBoneError(f"--seed must be 0 or more, got {args.seed}")
    return _run_experiment(
        args,
        leakage.leakage_map,
        write_leakage_report,
        _describe_leakage,
        sizes=sizes,
        epochs=epochs,
        seed=args.seed,
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
