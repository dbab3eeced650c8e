"""`facebone attack membership`: membership inference against a trained system."""

import argparse
from pathlib import Path

from facebone.attacks import list_attacks, plot_roc, run_membership_attacks
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.cli.common import (
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    open_cache,
    parse_attack_names,
    require_dir,
)
from facebone.cli.output import emit
from facebone.data.pairs import read_pairs
from facebone.system import load_system


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
    add_data_argument(parser)
    parser.add_argument("--members", type=Path, required=True, help="pairs the target trained on")
    parser.add_argument("--nonmembers", type=Path, required=True, help="pairs it never saw")
    parser.add_argument("--attacker", type=Path, required=True, help="the attacker's own pairs")
    parser.add_argument("--level", choices=("pair", "identity"), default="pair")
    parser.add_argument(
        "--attacks", default="all", help=f"'all' or comma-separated: {','.join(list_attacks())}"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write a log-scale ROC plot (PNG, PDF, SVG)")
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    require_dir(args.data, "data folder")
    attacks = parse_attack_names(args.attacks)
    members = read_pairs(args.members, args.data).pairs
    nonmembers = read_pairs(args.nonmembers, args.data).pairs
    attacker = read_pairs(args.attacker, args.data).pairs
    system = load_system(args.model, open_cache(args), progress=not args.json)
    try:
        results = run_membership_attacks(
            system_query_fn(system, args.data),
            system_shadow_trainer(system.get_params(), system.embedder_, args.data),
            attacker,
            members,
            nonmembers,
            level=args.level,
            attacks=attacks,
            seed=args.seed,
            progress=not args.json,
        )
    finally:
        system.embedder_.close()
    if args.plot:
        plot_roc(results, args.plot)
    lines = [
        f"membership at {args.level} level ({len(members)} member, "
        f"{len(nonmembers)} non-member pairs)",
        f"{'attack':<13} {'AUC':>6} {'bal.acc':>8} {'adv.':>6} {'TPR@1%':>7} {'TPR@0.1%':>9}",
    ]
    for name, m in results["attacks"].items():
        lines.append(
            f"{name:<13} {m['auc']:6.3f} {m['balanced_accuracy']:8.3f} {m['advantage']:6.3f} "
            f"{m['tpr_at_fpr']['0.01']:7.3f} {m['tpr_at_fpr']['0.001']:9.3f}"
        )
    emit(results, args.json, "\n".join(lines))
    return 0
