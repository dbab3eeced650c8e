"""`facebone audit`: attack the systems a deployer would build on one's own face model."""

import argparse
from pathlib import Path

from facebone.cli.common import add_cache_argument, add_data_argument, add_json_argument
from facebone.cli.output import emit
from facebone.errors import FaceBoneError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="audit your own face model: train the usual systems on it and attack them",
        description=(
            "From --data (one folder per person) make identity-disjoint members, non-members "
            "and attacker people; train on your backbones an undefended nn predictor, the "
            "cosine predictor, RelaxLoss and DP-SGD nn predictors, and with two or more "
            "backbones the multi-backbone nn and the fused cosine; attack each with online and "
            "offline LiRA and a black-box attack at pair and identity level. Results go to "
            "--out as a study (results.sqlite, config.toml: a rerun resumes) with report.html "
            "and report.md."
        ),
    )
    parser.add_argument(
        "--backbone",
        action="append",
        required=True,
        metavar="SPEC",
        help="a backbone to audit: onnx:PATH for your ONNX face model, or a built-in (sface, "
        "dlib, iresnet50:WEIGHTS); repeat for several (the first serves the single-backbone "
        "systems)",
    )
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="results folder (new, or resumed)")
    parser.add_argument(
        "--seeds", help="comma-separated split seeds (default 0,1,2; with --quick 0)"
    )
    parser.add_argument(
        "--shadows",
        type=int,
        help="shadow systems per attack, 4 or more (default each attack's own: 64 for "
        "lira-online, 16 for lira, 4 for blackbox-gb; with --quick 8)",
    )
    parser.add_argument(
        "--dp-epsilon",
        type=float,
        default=8.0,
        help="privacy budget of the DP-SGD system; 0 leaves it out",
    )
    parser.add_argument(
        "--systems",
        help="comma-separated subset of the audit's systems: none, cosine, relaxloss, "
        "dp-eps<E>, and over two or more backbones multi and cosine-fusion (default all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a preview: one split seed, 8 shadows per attack"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes training and attacking side by side"
    )
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.cli.common import open_cache, parse_names, parse_seeds
    from facebone.studies import audit
    from facebone.studies.executors import LocalExecutor

    if args.workers < 1:
        raise FaceBoneError(f"--workers must be 1 or more, got {args.workers}")
    _check_dp_epsilon(args.dp_epsilon)
    default_seeds = audit.QUICK_SEEDS if args.quick else audit.DEFAULT_SEEDS
    plan = audit.AuditPlan(
        backbones=tuple(args.backbone),
        data=args.data,
        out=args.out,
        seeds=tuple(parse_seeds(args.seeds, "--seeds")) if args.seeds else default_seeds,
        shadows=audit.QUICK_SHADOWS if args.shadows is None and args.quick else args.shadows,
        dp_epsilon=args.dp_epsilon or None,
        systems=tuple(parse_names(args.systems, "systems")) if args.systems else None,
    )
    audit.check_plan(plan)  # before the cache is opened or anything written
    executor = LocalExecutor(open_cache(args), args.workers)
    try:
        written, results = audit.run_audit(plan, executor, progress=not args.json)
    finally:
        executor.close()
    from facebone.experiments.defenses import display_name

    goal = results["goal"]
    lines = [f"wrote {written[0]} and {written[1]}"]
    for system, entry in goal["defenses"].items():
        for judged in entry["regimes"].values():
            worst = judged["worst"]["auc"]
            lines.append(
                f"{display_name(system):16s} accuracy {judged['accuracy']:.3f}  strongest "
                f"attack AUC {worst['mean']:.3f} ({worst['attack']}, {worst['level']})  "
                f"{'meets the goal' if judged['meets'] else 'fails the goal'}"
            )
    summary = {
        "out": str(args.out),
        "files": [str(p) for p in written],
        "meeting": goal["meeting"],
        "best": goal["best_defense"],
        "systems": {
            system: {
                "accuracy": judged["accuracy"],
                "strongest_auc": judged["worst"]["auc"]["mean"],
                "meets_goal": judged["meets"],
            }
            for system, entry in goal["defenses"].items()
            for judged in entry["regimes"].values()
        },
    }
    emit(summary, args.json, "\n".join(lines))
    return 0


def _check_dp_epsilon(value: float) -> None:
    """0 leaves the DP system out; any other value is checked as the nn predictor's
    `dp_epsilon` is, here, before the audit writes its study configuration."""
    from facebone.params import value_problem
    from facebone.predictors.nn import NNPredictor

    if value == 0:
        return
    budget = NNPredictor._parameter_constraints["dp_epsilon"][0]  # the number, not None
    if value_problem([budget], value) is not None:
        raise FaceBoneError(f"--dp-epsilon must be 0 (no DP system) or {budget}, got {value}")
