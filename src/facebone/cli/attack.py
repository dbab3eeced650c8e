"""`facebone attack KIND`: membership inference here; each other attack family registers its
own kind from one module (`attack_<kind>.py`, listed in `KIND_MODULES`)."""

import argparse
import importlib
from pathlib import Path

from facebone.cli.common import (
    ATTACK_NAMES,
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    add_key_file_argument,
    lazy_help,
    load_model,
    open_cache,
    parse_attack_names,
    require_dir,
    seed_value,
)
from facebone.cli.output import check_outputs, emit

# Modules that each add one attack kind with `register(kinds)`.
KIND_MODULES: tuple[str, ...] = (
    "facebone.cli.attack_extraction",
    "facebone.cli.attack_attribute",
    "facebone.cli.attack_inversion",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    attack = subparsers.add_parser("attack", help="run privacy attacks on a trained system")
    kinds = attack.add_subparsers(dest="attack_kind", required=True, metavar="KIND")
    parser = kinds.add_parser(
        "membership",
        help="membership inference: was this pair / person in the training data?",
        description=(
            "Query the system as a black box. Shadow systems are trained like the target on "
            "--attacker pairs only; the attacks are evaluated on --members (pairs the target "
            "trained on) against --nonmembers (pairs it never saw)."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    add_data_argument(parser)
    parser.add_argument("--members", type=Path, required=True, help="pairs the target trained on")
    parser.add_argument("--nonmembers", type=Path, required=True, help="pairs it never saw")
    parser.add_argument("--attacker", type=Path, required=True, help="the attacker's own pairs")
    parser.add_argument(
        "--level",
        choices=("pair", "identity"),
        default="pair",
        help="was this pair in training, or were this person's photos (%(choices)s)",
    )
    lazy_help(
        parser.add_argument("--attacks", default="all", help="'all' or comma-separated: %(names)s"),
        names=ATTACK_NAMES,
    )
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the shadow systems")
    parser.add_argument(
        "--shadows",
        type=int,
        help="shadow systems per shadow-based attack (default: each attack's own: 64 for "
        "lira-online, 16 for lira, 4 for the black-box and label-only attacks)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        help="ask each pair this many times (both image orders in turn) and average; "
        "default 16 when two answers to the same pair differ, else 1",
    )
    parser.add_argument("--plot", type=Path, help="write a log-scale ROC plot (PNG, PDF, SVG)")
    parser.add_argument("--force", action="store_true", help="replace --plot if it exists")
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)
    for module in KIND_MODULES:
        importlib.import_module(module).register(kinds)


def _run(args: argparse.Namespace) -> int:
    from facebone.attacks.membership.plot import check_plot_format, plot_roc
    from facebone.attacks.membership.runner import run_membership_attacks
    from facebone.attacks.system_target import (
        SystemShadowTrainer,
        system_pair_scores,
        system_query_fn,
    )
    from facebone.data.pairs import read_pairs

    require_dir(args.data, "data folder")
    if args.plot:
        check_outputs("--plot", [args.plot], args.force, args.data)
        check_plot_format(args.plot)
    attacks = parse_attack_names(args.attacks)
    members = read_pairs(args.members, args.data).pairs
    nonmembers = read_pairs(args.nonmembers, args.data).pairs
    attacker = read_pairs(args.attacker, args.data).pairs
    system = load_model(args, open_cache(args), progress=not args.json)
    try:
        results = run_membership_attacks(
            system_query_fn(system, args.data),
            SystemShadowTrainer(
                system.get_params(), system.embedder_, args.data, suppressions=system.suppressions_
            ),
            attacker,
            members,
            nonmembers,
            level=args.level,
            attacks=attacks,
            seed=args.seed,
            progress=not args.json,
            n_shadows=args.shadows,
            queries=args.queries,
            shadow_size=system.n_training_pairs_,
            pair_scores=system_pair_scores(system.get_params(), system.embedder_, args.data),
        )
    finally:
        system.embedder_.close()
    first = next(iter(results["attacks"].values()))
    counted = "people" if args.level == "identity" else "pairs"
    lines = [
        f"membership at {args.level} level ({first['n_members']} member, "
        f"{first['n_nonmembers']} non-member {counted})",
        f"{'attack':<13} {'AUC':>6} {'bal.acc':>8} {'adv.':>6} {'TPR@1%':>7} {'TPR@0.1%':>9}"
        f" {'shadows':>8} {'queries':>8}",
    ]
    for name, m in results["attacks"].items():
        lines.append(
            f"{name:<13} {m['auc']:6.3f} {m['balanced_accuracy']:8.3f} {m['advantage']:6.3f} "
            f"{m['tpr_at_fpr']['0.01']:7.1%} {m['tpr_at_fpr']['0.001']:9.1%}"
            f" {m['shadows']:8d} {m['queries']:8d}"
        )
    if args.plot:
        lines.append(f"ROC plot: {plot_roc(results, args.plot, args.model.resolve().name)}")
    emit(results, args.json, "\n".join(lines))
    return 0
