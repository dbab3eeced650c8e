"""`facebone train`: train an FR system on pairs and save it as a model directory."""

import argparse
import time
from pathlib import Path

from facebone.atomic import check_outside_data, check_writable
from facebone.cli.common import (
    PREDICTOR_NAMES,
    LazyNames,
    add_cache_argument,
    add_data_argument,
    add_force_argument,
    add_json_argument,
    add_nn_option,
    open_cache,
    parse_backbone_specs,
    refuse_key_inside,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError

# nn-only options: each flag's destination is the NNPredictor argument of the same name.
NN_OPTIONS = (
    "epochs",
    "hidden",
    "weight_decay",
    "lr",
    "dp_epsilon",
    "dp_delta",
    "max_grad_norm",
    "relax_alpha",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an FR system and save it",
        description="Train a face-verification system on labelled pairs of a data folder.",
    )
    add_data_argument(parser)
    parser.add_argument(
        "--pairs", type=Path, required=True, help="training pairs CSV (image1,image2,label)"
    )
    parser.add_argument(
        "--backbones", default="sface", help="comma-separated backbones, e.g. sface,dlib"
    )
    parser.add_argument(
        "--mitigation",
        choices=LazyNames("facebone.system", "MITIGATIONS"),
        default="none",
        metavar="NAME",
        help="none: one backbone; multi: several backbones, one drawn per query; "
        "split-distill: teachers on identity-disjoint shards, one distilled nn deployed "
        "(%(choices)s)",
    )
    parser.add_argument(
        "--assign",
        choices=LazyNames("facebone.system", "ASSIGN_POLICIES"),
        default="all",
        metavar="POLICY",
        help="multi: which backbone embeds each training pair (%(choices)s)",
    )
    parser.add_argument(
        "--infer",
        choices=LazyNames("facebone.system", "INFER_POLICIES"),
        default="random",
        metavar="POLICY",
        help="multi: which backbone answers each query (%(choices)s)",
    )
    parser.add_argument(
        "--fixed-backbone", help="backbone answering when --infer fixed (default: the first)"
    )
    parser.add_argument(
        "--predictor",
        choices=PREDICTOR_NAMES,
        default="nn",
        metavar="NAME",
        help="what decides from two embeddings (%(choices)s)",
    )
    nn_group = parser.add_argument_group("nn predictor")
    add_nn_option(nn_group, "--epochs", type=int, help="training epochs")
    add_nn_option(nn_group, "--hidden", type=_widths, help="hidden layer widths, e.g. 256,64")
    add_nn_option(nn_group, "--weight-decay", type=float, help="L2 weight decay of Adam")
    add_nn_option(nn_group, "--lr", type=float, help="Adam learning rate")
    add_nn_option(nn_group, "--dp-epsilon", type=float, help="train with DP-SGD (Opacus) to this ε")
    add_nn_option(nn_group, "--dp-delta", type=float, help="DP δ (default: below 1/n)")
    add_nn_option(nn_group, "--max-grad-norm", type=float, help="DP-SGD clipping norm")
    add_nn_option(
        nn_group,
        "--relax-loss",
        dest="relax_alpha",
        type=float,
        metavar="ALPHA",
        help="train with RelaxLoss, holding member losses near ALPHA",
    )
    distill_group = parser.add_argument_group("split-distill")
    distill_group.add_argument(
        "--shards",
        type=int,
        default=4,
        help="identity-disjoint shards, one teacher each (default 4)",
    )
    distill_group.add_argument(
        "--teacher",
        choices=("cosine", "nn"),
        default="cosine",
        help="predictor of each shard's teacher (%(choices)s; default cosine)",
    )
    distill_group.add_argument(
        "--distill-factor",
        type=float,
        default=4.0,
        help="distillation set size as a multiple of the training pairs (default 4)",
    )
    protection_group = parser.add_argument_group("template protection")
    protection_group.add_argument(
        "--template-protection",
        choices=LazyNames("facebone.protection", "list_protections"),
        metavar="NAME",
        help="store and match keyed cancelable templates instead of embeddings (%(choices)s); "
        "needs --key-file",
    )
    protection_group.add_argument(
        "--key-file",
        type=Path,
        help="the protection's secret keys, one per backbone: read if the file exists, else "
        "drawn from the operating system's entropy and written there (never overwritten); "
        "keep it apart from the model, which needs it to load",
    )
    deploy_group = parser.add_argument_group("deployment")
    deploy_group.add_argument(
        "--deploy",
        type=Path,
        metavar="TOML",
        help="train the system a deployment file names (e.g. configs/deploy.toml): its defense "
        "replaces --backbones, --mitigation, --assign, --infer, --predictor and "
        "--template-protection",
    )
    deploy_group.add_argument(
        "--public-pairs",
        type=Path,
        metavar="CSV",
        help="pairs of other people (public data) on which a member-free system fits its "
        "calibration (calibration 'public'); they may share no person with --pairs",
    )
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=0,
        help="seed of the backbone assignment and the nn weights",
    )
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    add_force_argument(parser, "the model")
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of layer widths") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive")
    return widths


def _flag(option: str) -> str:
    return "--relax-loss" if option == "relax_alpha" else "--" + option.replace("_", "-")


def predictor_params(args: argparse.Namespace) -> dict:
    """The nn options given as flags, each checked against the predictor's declared
    constraints (`NNPredictor._parameter_constraints`) before any work."""
    from facebone.params import value_problem
    from facebone.predictors.nn import NNPredictor

    given = {name: getattr(args, name) for name in NN_OPTIONS if getattr(args, name) is not None}
    if given and args.predictor != "nn":
        flags = ", ".join(map(_flag, given))
        raise FaceBoneError(f"{flags} only apply to the nn predictor, not {args.predictor!r}")
    for name, value in given.items():
        problem = value_problem(NNPredictor._parameter_constraints[name], value)
        if problem is not None:
            raise FaceBoneError(f"{_flag(name)} {problem}")
    return given


def _system_params(args: argparse.Namespace) -> dict:
    """`FRSystem(**...)` options: the deployment's defense, or the flags."""
    if args.deploy is not None:
        from facebone.system.deployment import load_deployment

        return load_deployment(args.deploy).system_params(args.seed)
    return {
        "backbones": parse_backbone_specs(args.backbones),
        "predictor": args.predictor,
        "predictor_params": predictor_params(args),
        "mitigation": args.mitigation,
        "assign": args.assign,
        "infer": args.infer,
        "fixed_backbone": args.fixed_backbone,
        "seed": args.seed,
        "shards": args.shards,
        "teacher": args.teacher,
        "distill_factor": args.distill_factor,
        "template_protection": args.template_protection,
    }


def _public_pairs(args: argparse.Namespace, system, members) -> list | None:
    """The public calibration pairs a member-free system needs (none for others), checked to
    share no person with the members."""
    from facebone.attacks.base import pair_identities
    from facebone.data.pairs import read_pairs

    if system.calibration != "public":
        if args.public_pairs is not None:
            raise FaceBoneError("--public-pairs is for a system calibrated on public pairs")
        return None
    if args.public_pairs is None:
        raise FaceBoneError(
            "this system calibrates on public pairs of other people; give --public-pairs"
        )
    public = read_pairs(args.public_pairs, args.data, distinct=True).pairs
    shared = {w for p in public for w in pair_identities(p)} & {
        w for p in members for w in pair_identities(p)
    }
    if shared:
        raise FaceBoneError(
            f"--public-pairs shares {len(shared)} people with --pairs (e.g. {min(shared)}); "
            "a member-free calibration must see none of the members"
        )
    return public


def _run(args: argparse.Namespace) -> int:
    from facebone.data.pairs import read_pairs
    from facebone.embeddings.embedder import Embedder
    from facebone.predictors.nn import training_progress
    from facebone.protection import load_keys, save_keys
    from facebone.system import FRSystem, save_system
    from facebone.system.model_dir import foreign_entries

    require_dir(args.data, "data folder")
    refuse_key_inside(args.key_file, "--key-file", args.out, "--out")
    params = _system_params(args)  # every option checked before anything is read
    started = time.perf_counter()
    others = foreign_entries(args.out)
    if others and not args.force:
        raise FaceBoneError(
            f"--out {args.out} holds files FaceBone did not write ({', '.join(others[:3])}); "
            "choose another folder, or pass --force to replace only the model's files there"
        )
    check_writable(args.out, "--out")
    check_outside_data(args.out, args.data, "--out")
    if (params["template_protection"] is None) != (args.key_file is None):
        raise FaceBoneError("a template protection and --key-file go together")
    keys = load_keys(args.key_file) if args.key_file and args.key_file.exists() else None
    if args.key_file and keys is None:
        check_outside_data(args.key_file, args.data, "--key-file")
        check_writable(args.key_file, "--key-file")
    pair_list = read_pairs(args.pairs, args.data, distinct=True)
    system = FRSystem(**params)
    public = _public_pairs(args, system, pair_list.pairs)
    embedder = Embedder(system.backbones, open_cache(args), progress=not args.json)
    try:
        with training_progress(not args.json):
            system.fit(embedder, args.data, pair_list.pairs, keys=keys, public_pairs=public)
    finally:
        embedder.close()
    predictor = system.predictor_
    privacy = {
        "epsilon": getattr(predictor, "epsilon_", None),
        "delta": getattr(predictor, "delta_", None),
    }
    if args.key_file and keys is None:
        # The new keys first: a model saved without its key file could never be loaded.
        save_keys(args.key_file, system.protections_)
    save_system(system, args.out, extra={"dp": privacy}, force=args.force)
    result = {
        "model": str(args.out),
        "n_pairs": len(pair_list.pairs),
        "skipped": len(pair_list.skipped),
        "backbones": list(system.backbones),
        "mitigation": system.mitigation,
        "predictor": system.predictor,
        "dp": privacy,
        "template_protection": system.template_protection,
        "key_file": None if args.key_file is None else str(args.key_file),
        "key_created": bool(args.key_file and keys is None),
        "seconds": round(time.perf_counter() - started, 2),
    }
    text = (
        f"trained on {len(pair_list.pairs)} pairs ({len(pair_list.skipped)} skipped); "
        f"saved {args.out}"
    )
    if privacy["epsilon"] is not None:
        text += f"; DP-SGD ε={privacy['epsilon']:.2f}, δ={privacy['delta']:g}"
    if args.key_file:
        text += f"; {'new ' if result['key_created'] else ''}keys in {args.key_file}"
    emit(result, args.json, text)
    return 0
