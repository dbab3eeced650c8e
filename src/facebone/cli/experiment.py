"""`facebone experiment`: the defense comparison and the leakage map, with their reports."""

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebone.cli.common import (
    ATTACK_NAMES,
    LazyNames,
    LazyText,
    add_cache_argument,
    add_data_argument,
    add_force_argument,
    add_json_argument,
    lazy_help,
    open_cache,
    parse_attack_names,
    parse_names,
    parse_seeds,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.data.lfw import scan_lfw
from facebone.data.pairs import ROLES, make_protocol, read_pairs
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.studies.shortcuts import CanaryPlan

# The experiments pull in torch and ART: their names and defaults are read only when a help
# shows them or the command runs, so that building the parser stays fast.
DEFENSE_NAMES = LazyNames("facebone.experiments.defenses", "list_defenses")
REGIME_NAMES = LazyNames("facebone.experiments.regimes", "list_regimes")


def _leakage_default(name: str) -> str:
    from facebone.studies import shortcuts

    if name == "sizes":
        return ",".join(shortcuts.size_label(s) for s in shortcuts.LEAKAGE_SIZES)
    return ",".join(str(v) for v in shortcuts.LEAKAGE_EPOCHS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="compare defenses, or map where the undefended system leaks",
        description=(
            "Privacy experiments on identity-disjoint pair protocols. compare and leakage "
            "are shortcuts for the shipped study configurations (configs/compare.toml, "
            "quick.toml, leakage.toml; `facebone study run` runs them as they are): their "
            "options replace the configuration's, and the results go into --out as a study "
            "folder (results.sqlite, report.html, report.md; a rerun resumes)."
        ),
    )
    commands = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")

    compare_parser = commands.add_parser(
        "compare",
        help="every defense x regime: utility and membership attacks",
        description=(
            "Train each defense in each regime on the same splits, measure utility on "
            "target_test, and attack it at pair and identity level: configs/compare.toml "
            "(configs/quick.toml with --quick) run as a study into --out, then the canary "
            "audit (canaries.json) and the report (report.html, self-contained, and report.md)."
        ),
    )
    _common_arguments(compare_parser)
    lazy_help(
        compare_parser.add_argument(
            "--defenses",
            help="comma-separated, of %(names)s (default: the configuration's, all of them; "
            "four with --quick)",
        ),
        names=DEFENSE_NAMES,
    )
    lazy_help(
        compare_parser.add_argument(
            "--regimes",
            help="comma-separated, of %(names)s (default: the configuration's, all of them; "
            "leaking with --quick)",
        ),
        names=REGIME_NAMES,
    )
    _attack_arguments(compare_parser, "the configuration's: all seven")
    _seed_arguments(compare_parser)
    _canary_arguments(
        compare_parser, "the canary audit of each defense on each regime's first seed"
    )
    _study_arguments(compare_parser)
    compare_parser.add_argument(
        "--quick",
        action="store_true",
        help="run configs/quick.toml, a preview of a few minutes: four defenses in the leaking "
        "regime, two seeds, online LiRA with 8 shadows and the rule-based attack, a small "
        "canary audit (options given explicitly still win)",
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
            "training length: configs/leakage.toml (one regime per cell) run as a study into "
            "--out, then its report (report.html, report.md) with the leakage heatmap."
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
    _attack_arguments(leakage_parser, "the configuration's: lira-online,lira")
    leakage_parser.add_argument("--seed", type=seed_value, help="split seed (default 0)")
    _study_arguments(leakage_parser)
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


def _study_arguments(parser: argparse.ArgumentParser) -> None:
    """What a study shortcut adds: worker processes and --force."""
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that train and attack systems side by side (default 1; one per core "
        "is fastest, at one core's memory each)",
    )
    add_force_argument(parser, "the study")


def _attack_arguments(parser: argparse.ArgumentParser, attacks: str) -> None:
    """--attacks (unset: `attacks`) and --shadows (unset: each attack's in the configuration)."""
    lazy_help(
        parser.add_argument(
            "--attacks", help="'all' or comma-separated: %(names)s (default %(fallback)s)"
        ),
        names=ATTACK_NAMES,
        fallback=attacks,
    )
    parser.add_argument(
        "--shadows",
        type=int,
        help="shadow systems per shadow-based attack (default: the configuration's, else each "
        "attack's own: 64 for lira-online, 16 for lira, 4 for the others)",
    )


def _seed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        help="comma-separated split seeds of the regimes without seeds of their own (default: "
        "the configuration's, 0,1,2; 0,1 with --quick)",
    )
    parser.add_argument(
        "--leaking-seeds",
        help="comma-separated split seeds of the leaking regime (default: the configuration's, "
        "0,1,2,3,4: with 100 members one seed scatters by about +-0.03 AUC; --seeds with --quick)",
    )


def _canary_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--canaries",
        type=int,
        help=f"canaries planted, a multiple of 4; 0 skips {what or 'nothing'} (default 64; "
        "16 with --quick)",
    )
    parser.add_argument(
        "--targets",
        type=int,
        help="systems trained per defense in the canary audit (default 32; 8 with --quick)",
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


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FaceBoneError(f"--out {out} exists and is not a folder")


def _shortcut_overrides(args: argparse.Namespace, config: Path) -> dict[str, Any]:
    """What the options every shortcut shares replace in the configuration: the pairs
    (--pairs-dir) and the attacks (--attacks, --shadows), checked as flags."""
    from facebone.studies.config import attack_min_shadows
    from facebone.studies.shortcuts import attack_tables

    if args.workers < 1:
        raise FaceBoneError(f"--workers must be 1 or more, got {args.workers}")
    require_dir(args.data, "data folder")
    _check_out(args.out)
    overrides: dict[str, Any] = {}
    if args.pairs_dir is not None:
        require_dir(args.pairs_dir, "pairs folder")
        files = {role: str((args.pairs_dir / f"{role}.csv").resolve()) for role in ROLES}
        overrides["splits"] = {"files": files}
    attacks = parse_attack_names(args.attacks) if args.attacks else None
    tables = attack_tables(config, attacks, args.shadows)
    if args.shadows is not None:
        for table in tables:
            if args.shadows < attack_min_shadows(table["name"]):
                raise FaceBoneError(
                    f"--shadows {args.shadows}: {table['name']} needs at least "
                    f"{attack_min_shadows(table['name'])} shadows"
                )
    if attacks is not None or args.shadows is not None:
        overrides["attacks"] = tables
    return overrides


def _run_shortcut(
    args: argparse.Namespace,
    name: str,
    overrides: dict[str, Any],
    title: str,
    canaries: "CanaryPlan | None" = None,
    sections: Callable[..., Sequence[Any]] | None = None,
) -> int:
    """Run the shipped configuration `name` with `overrides`, then the canary audit if
    planned and the report, and print the verdict."""
    import time

    from facebone.studies.config import load_config
    from facebone.studies.shortcuts import run_shortcut, shipped_config

    config = load_config(shipped_config(name), args.data, args.out, overrides)
    cache = open_cache(args)
    started = time.perf_counter()
    written, results = run_shortcut(
        config, cache, args.workers, not args.json, args.force, canaries, title, sections
    )
    wall_s = time.perf_counter() - started
    lines, extra = _describe(results)
    lines = [f"wrote {', '.join(str(p) for p in written)}", *lines, f"wall time {wall_s:.0f} s"]
    summary = {
        "out": str(args.out),
        "config_hash": config.config_hash(),
        "files": [str(p) for p in written],
        **extra,
        "wall_s": wall_s,
    }
    emit(summary, args.json, "\n".join(lines))
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from facebone.experiments.canaries import (
        DEFAULT_CANARIES,
        DEFAULT_TARGETS,
        check_canary_options,
    )
    from facebone.experiments.defenses import get_defense
    from facebone.experiments.regimes import get_regime
    from facebone.studies.shortcuts import CanaryPlan, shipped_config

    name = "quick" if args.quick else "compare"
    overrides = _shortcut_overrides(args, shipped_config(name))
    systems: dict[str, Any] = {}
    if args.defenses:
        systems["defenses"] = [get_defense(d).name for d in parse_names(args.defenses, "defenses")]
    if args.regimes:
        systems["regimes"] = [get_regime(r).name for r in parse_names(args.regimes, "regimes")]
    if systems:
        overrides["systems"] = systems
    splits = overrides.setdefault("splits", {})
    if args.seeds:
        splits["seeds"] = parse_seeds(args.seeds, "--seeds")
    if args.leaking_seeds:
        splits["regime_seeds"] = {"leaking": parse_seeds(args.leaking_seeds, "--leaking-seeds")}
    n_canaries, n_targets = (16, 8) if args.quick else (DEFAULT_CANARIES, DEFAULT_TARGETS)
    n_canaries = n_canaries if args.canaries is None else args.canaries
    n_targets = n_targets if args.targets is None else args.targets
    canaries = None
    if n_canaries:
        check_canary_options(n_canaries, n_targets)
        canaries = CanaryPlan(n_canaries, n_targets)
    return _run_shortcut(args, name, overrides, "FaceBone defense comparison", canaries)


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
        seeds=parse_seeds(args.seeds, "--seeds"),
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


def _describe(results: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    from facebone.experiments.defenses import display_name

    goal = results["goal"]
    best = goal["best_defense"]
    lines = []
    for defense, entry in goal["defenses"].items():
        for regime, judged in entry["regimes"].items():
            worst = judged["worst"]
            lines.append(
                f"{regime:8s} {display_name(defense):22s} accuracy {judged['accuracy']:.3f}  "
                f"strongest attack AUC {worst['auc']['mean']:.3f} ({worst['auc']['attack']}, "
                f"{worst['auc']['level']})  TPR@1%FPR {worst['0.01']['mean']:.1%} "
                f"({worst['0.01']['attack']}, {worst['0.01']['level']})  "
                f"{'meets the goal' if judged['meets'] else 'fails'}"
            )
    lines.append(
        "goal met by: "
        + (", ".join(map(display_name, goal["meeting"])) or "no defended configuration")
        + (f" (recommended: {display_name(best)})" if best else "")
    )
    return lines, {"goal": goal}


def _run_leakage(args: argparse.Namespace) -> int:
    from facebone.studies import shortcuts

    overrides = _shortcut_overrides(args, shortcuts.shipped_config("leakage"))
    if args.sizes or args.epochs:
        sizes = shortcuts.parse_sizes(args.sizes or _leakage_default("sizes"))
        epochs = shortcuts.parse_epochs(args.epochs or _leakage_default("epochs"))
        regimes = shortcuts.leakage_regimes(sizes, epochs)
        overrides["regimes"] = regimes
        overrides["systems"] = {"regimes": [regime["name"] for regime in regimes]}
    if args.seed is not None:
        overrides.setdefault("splits", {})["seeds"] = [args.seed]
    return _run_shortcut(
        args,
        "leakage",
        overrides,
        "FaceBone: where the undefended nn predictor leaks",
        sections=shortcuts.leakage_map_sections,
    )
