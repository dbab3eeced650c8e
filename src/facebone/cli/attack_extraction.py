"""`facebone attack extraction`: copy a trained system from its answers, at several budgets."""

import argparse
import time
from pathlib import Path

from facebone.cli.common import (
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
    open_cache,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "extraction",
        help="model extraction: copy the verifier from its answers",
        description=(
            "Ask the system 'same person?' for pairs of the attacker's own photos (--attacker), "
            "train a surrogate nn on its answers for each query budget, and measure on pairs "
            "of other people (--targets) how often the copy decides as the system (fidelity) "
            "and how accurate it is. With --members and --nonmembers the copy also serves as "
            "the reference model of a membership attack, and --shadows copies serve as the "
            "shadows of offline LiRA."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    add_data_argument(parser)
    parser.add_argument(
        "--attacker", type=Path, required=True, help="pairs CSV whose photos the attacker owns"
    )
    parser.add_argument("--budgets", default="100,1000,10000", help="comma-separated query budgets")
    parser.add_argument(
        "--targets",
        type=Path,
        help="labelled pairs of people the attacker never asked about, for fidelity and "
        "accuracy (default: the pairs of a random half of the --attacker people, whose photos "
        "are then never asked about)",
    )
    parser.add_argument("--members", type=Path, help="pairs the system trained on")
    parser.add_argument("--nonmembers", type=Path, help="pairs it never saw")
    parser.add_argument(
        "--shadows",
        type=int,
        default=16,
        help="with --members: copies of the system trained as offline LiRA's shadows, on "
        "its answers to the --attacker pairs (0: skip)",
    )
    parser.add_argument(
        "--surrogate-backbone", default="sface", help="the attacker's public backbone"
    )
    parser.add_argument(
        "--hard-labels",
        action="store_true",
        help="train on the system's decisions instead of its probabilities",
    )
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="seed of the queries and surrogates"
    )
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _budgets(text: str) -> list[int]:
    try:
        budgets = [int(part) for part in text.split(",")]
    except ValueError:
        raise FaceBoneError(f"--budgets {text!r}: give comma-separated whole numbers") from None
    if min(budgets) < 2:
        raise FaceBoneError(f"--budgets {text!r}: each budget must be at least 2 queries")
    return sorted(set(budgets))


def _run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from facebone.attacks.base import logit_confidence
    from facebone.attacks.extraction.surrogate import CopiedShadowTrainer, ModelExtraction
    from facebone.attacks.membership.base import repeated_query, split_by_identity
    from facebone.attacks.membership.lira import LiRAAttack
    from facebone.attacks.membership.metrics import evaluate_scores
    from facebone.attacks.membership.runner import choose_queries
    from facebone.attacks.system_target import system_query_fn
    from facebone.data.pairs import pair_labels, read_pairs
    from facebone.embeddings.embedder import Embedder

    require_dir(args.data, "data folder")
    budgets = _budgets(args.budgets)
    if (args.members is None) != (args.nonmembers is None):
        raise FaceBoneError("--members and --nonmembers go together")
    if args.shadows < 0 or args.shadows == 1:
        raise FaceBoneError(f"--shadows must be 0 or at least 2, got {args.shadows}")
    started = time.perf_counter()
    attacker = read_pairs(args.attacker, args.data).pairs
    if args.targets is None:
        attacker, targets = split_by_identity(attacker, np.random.default_rng([args.seed, 4]))
    else:
        targets = read_pairs(args.targets, args.data).pairs
    candidates, is_member = [], []
    if args.members is not None:
        members = read_pairs(args.members, args.data).pairs
        nonmembers = read_pairs(args.nonmembers, args.data).pairs
        candidates, is_member = members + nonmembers, [1] * len(members) + [0] * len(nonmembers)
    cache = open_cache(args)
    system = load_model(args, cache, progress=not args.json)
    own = Embedder([args.surrogate_backbone], cache, progress=not args.json)
    try:
        target = system_query_fn(system, args.data)
        images = [p for pair in (*attacker, *targets, *candidates) for p in pair[:2]]
        embeddings = own.dataset(args.data, images)[own.names[0]]
        baseline, answers, copied_lira = None, None, None
        if candidates:
            # A system that draws a backbone per query is asked each pair repeatedly, as the
            # membership attacks do, so the scores compare answers and not draws.
            asked = repeated_query(target, choose_queries(target, candidates[:64], None))
            answers = asked(candidates)
            confidence = logit_confidence(answers, pair_labels(candidates))
            baseline = evaluate_scores(is_member, confidence)
            if args.shadows:
                lira = LiRAAttack(n_shadows=args.shadows, seed=args.seed)
                lira.fit(CopiedShadowTrainer(target, embeddings), attacker)
                copied_lira = evaluate_scores(
                    is_member, lira.infer(asked, candidates), lira.threshold_
                )
        rows = []
        for budget in tqdm(budgets, desc="query budgets", disable=args.json):
            extraction = ModelExtraction(budget, soft=not args.hard_labels, seed=args.seed)
            extraction.fit(target, embeddings, attacker)
            row = {"budget": budget, "queries": len(extraction.queries_)}
            row.update(extraction.evaluate(target, embeddings, targets))
            if candidates:
                scores = extraction.membership_scores(answers, embeddings, candidates)
                row["membership"] = evaluate_scores(is_member, scores)
            rows.append(row)
    finally:
        system.embedder_.close()
        own.close()
    result = {
        "model": str(args.model),
        "surrogate_backbone": args.surrogate_backbone,
        "soft_labels": not args.hard_labels,
        "seed": args.seed,
        "budgets": rows,
        "membership_baseline": baseline,
        "membership_lira_copied_shadows": copied_lira,
        "seconds": round(time.perf_counter() - started, 2),
    }
    emit(result, args.json, _text(result))
    return 0


def _text(result: dict) -> str:
    lines = [
        f"model extraction of {result['model']} through {result['surrogate_backbone']} "
        f"({'soft' if result['soft_labels'] else 'hard'} labels)",
        f"{'budget':>7} {'queries':>8} {'fidelity':>9} {'accuracy':>9} {'AUC':>6}"
        + (f" {'MIA AUC':>8} {'TPR@1%':>7}" if result["membership_baseline"] else ""),
    ]
    for row in result["budgets"]:
        line = (
            f"{row['budget']:7d} {row['queries']:8d} {row['fidelity']:9.3f} "
            f"{row['accuracy']:9.3f} {row['auc']:6.3f}"
        )
        if "membership" in row:
            m = row["membership"]
            line += f" {m['auc']:8.3f} {m['tpr_at_fpr']['0.01']:7.1%}"
        lines.append(line)
    if result["membership_baseline"]:
        m = result["membership_baseline"]
        lines.append(
            f"membership without the copy (target confidence alone): AUC {m['auc']:.3f}, "
            f"TPR@1% {m['tpr_at_fpr']['0.01']:.1%}"
        )
    if result["membership_lira_copied_shadows"]:
        m = result["membership_lira_copied_shadows"]
        lines.append(
            f"offline LiRA with copies as shadows: AUC {m['auc']:.3f}, "
            f"TPR@1% {m['tpr_at_fpr']['0.01']:.1%}"
        )
    return "\n".join(lines)
