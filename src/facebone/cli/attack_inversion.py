"""`facebone attack inversion`: faces back from the templates a system stores."""

import argparse
from pathlib import Path
from typing import Any

from facebone.cli.common import (
    add_cache_argument,
    add_data_argument,
    add_force_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
    open_cache,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError

METHODS = ("decoder", "optimise", "blackbox")
# What --budget counts for each method, and its default.
BUDGETS = {"decoder": ("training epochs", 30), "optimise": ("gradient steps", 50)}
BUDGETS["blackbox"] = ("queries per target", 400)
OUTPUTS = ("inversion.json", "inversion-grid.png")


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "inversion",
        help="model inversion: faces back from leaked templates",
        description=(
            "Reconstruct target faces from the templates the system stores for them "
            "(--targets images), learning only from the attacker's own photos (--attacker). "
            "An independent backbone (dlib when SFace is attacked, else SFace) scores the "
            "reconstructions: success attack rate (SAR) type I (against the leaked image) and "
            "type II (against the person's other images) at FAR 0.1% and 1%, and SSIM. A "
            "system with template protection is attacked by the decoder with a key of the "
            "attacker's own (the headline) and with the stolen key, and by the blackbox search, "
            "which needs no key, through the protected service."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    add_data_argument(parser)
    parser.add_argument("--targets", type=Path, required=True, help="pairs CSV of target photos")
    parser.add_argument("--attacker", type=Path, required=True, help="the attacker's own pairs")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="decoder",
        help="decoder (learned), optimise (gradients through a torch copy of the backbone), "
        "blackbox (the service's scores only)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        help="decoder: training epochs (30); optimise: gradient steps (50); blackbox: "
        "queries per target (400)",
    )
    parser.add_argument("--backbone", help="the backbone attacked (default: the system's first)")
    parser.add_argument(
        "--image-size",
        type=int,
        choices=(64, 112),
        default=64,
        help="side of the decoder's faces in pixels, %(choices)s (default %(default)s)",
    )
    parser.add_argument("--max-targets", type=int, help="invert only the first N target photos")
    parser.add_argument("--grid-rows", type=int, default=8, help="people shown in the grid")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="seed of training, search and keys"
    )
    parser.add_argument("--out", type=Path, help=f"folder for {' and '.join(OUTPUTS)}")
    add_force_argument(parser, "the results")
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _check(args: argparse.Namespace) -> None:
    require_dir(args.data, "data folder")
    if args.budget is not None and args.budget < 1:
        raise FaceBoneError(f"--budget must be at least 1, got {args.budget}")
    if args.max_targets is not None and args.max_targets < 1:
        raise FaceBoneError(f"--max-targets must be at least 1, got {args.max_targets}")
    if args.grid_rows < 1:
        raise FaceBoneError(f"--grid-rows must be at least 1, got {args.grid_rows}")
    check_device(args.device)
    if args.out is not None:
        from facebone.atomic import check_writable
        from facebone.cli.output import check_outputs

        check_writable(args.out, "--out", folder=True)
        check_outputs("--out", [args.out / name for name in OUTPUTS], args.force, args.data)


def check_device(device: str) -> None:
    """--device is cpu or cuda[:N], and cuda only where torch sees a GPU."""
    if device.partition(":")[0] not in ("cpu", "cuda"):
        raise FaceBoneError(f"--device must be cpu or cuda, not {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise FaceBoneError("--device cuda: torch sees no GPU here; use --device cpu")


def _run(args: argparse.Namespace) -> int:
    from facebone.attacks.inversion.run import InversionData
    from facebone.backbones import create_backbone
    from facebone.data.pairs import read_pairs

    _check(args)
    budget = args.budget if args.budget is not None else BUDGETS[args.method][1]
    targets = read_pairs(args.targets, args.data).images[: args.max_targets]
    attacker = read_pairs(args.attacker, args.data).images
    cache = open_cache(args)
    system = load_model(args, cache, progress=not args.json)
    names = system.embedder_.names
    name = args.backbone or names[0]
    if name not in names:
        raise FaceBoneError(f"--backbone {name!r} is not one of the system's: {', '.join(names)}")
    if args.method == "optimise" and system.template_protection is not None:
        raise FaceBoneError(
            "--method optimise attacks raw embeddings; a protected system is attacked "
            "with --method decoder or blackbox"
        )
    attacked = system.embedder_.backbones[names.index(name)]
    evaluator = create_backbone("dlib" if name != "dlib" else "sface")
    try:
        data = InversionData.prepare(
            args.data, attacker, targets, attacked, evaluator, cache, not args.json
        )
        result = _attack(args, system, name, data, budget)
    finally:
        system.embedder_.close()
        evaluator.close()
    emit(result, args.json, _text(result))
    return 0


def _attack(args: argparse.Namespace, system, name: str, data, budget: int) -> dict[str, Any]:
    """Each threat model's scores (undefended, or with a key of the attacker's own and the
    stolen key; the score-only search needs no key, as it only queries the service), the
    headline first; the grid and JSON written under --out."""
    from facebone.attacks.inversion.reconstruction import write_grid
    from facebone.attacks.inversion.run import first_per_person
    from facebone.protection import create_protection

    own, stored = data.attacker_embeddings, system.protect(name, data.target_embeddings)
    if system.template_protection is None:
        threats = {"undefended": system.protect(name, own)}
    elif args.method == "blackbox":
        threats = {"service": system.protect(name, own)}
    else:
        params = {**system.protections_[name].get_params(), "seed": args.seed}
        own_key = create_protection(system.template_protection, **params)
        # The attacker knows the scheme: its own key is fitted to its own faces, as the
        # system's was to the system's.
        own_key.fit(own)
        threats = {"own_key": own_key.transform(own), "stolen_key": system.protect(name, own)}
    scored, images = {}, {}
    for threat, templates in threats.items():
        attack = _create_attack(args, system, name, budget)
        scores, images[threat], seconds = data.evaluate(attack, templates, stored)
        scored[threat] = {**scores.to_dict(), "seconds": round(seconds, 1)}
    headline = next(iter(scored.values()))
    result = {
        **{key: headline[key] for key in ("sar", "ssim", "chance")},
        "method": args.method,
        "budget": budget,
        "budget_counts": BUDGETS[args.method][0],
        "backbone": name,
        "evaluator": data.evaluator.name,
        "template_protection": system.template_protection,
        "image_size": args.image_size,
        "seed": args.seed,
        "device": args.device,
        "attacker": {"images": len(data.attacker_paths), "people": _people(data.attacker_paths)},
        "thresholds": {f"far_{far}": t for far, t in data.thresholds.items()},
        "threat_models": scored,
    }
    if args.out is not None:
        import json

        from facebone.atomic import write_text_atomic

        rows = first_per_person(data.target_paths, args.grid_rows)
        grid = write_grid(
            args.out / OUTPUTS[1], data.target_faces[rows], {k: v[rows] for k, v in images.items()}
        )
        result["grid"] = str(grid)
        write_text_atomic(args.out / OUTPUTS[0], json.dumps(result, indent=2, sort_keys=True))
    return result


def _create_attack(args: argparse.Namespace, system, name: str, budget: int):
    """The inversion attack --method names, with --budget as its own budget."""
    from facebone.attacks.registry import create_attack

    decoder_params = {"image_size": args.image_size, "device": args.device, "seed": args.seed}
    if args.method == "decoder":
        return create_attack("decoder", epochs=budget, progress=not args.json, **decoder_params)
    if args.method == "optimise":
        from facebone.backbones.onnx_torch import differentiable_backbone

        return create_attack(
            "optimise",
            backbone=differentiable_backbone(
                system.embedder_.specs[system.embedder_.names.index(name)]
            ),
            decoder=create_attack("decoder", progress=not args.json, **decoder_params),
            image_size=args.image_size,
            budget=budget,
            device=args.device,
            progress=not args.json,
        )
    from facebone.attacks.inversion.blackbox import service_oracle

    return create_attack(
        "blackbox",
        oracle=service_oracle(system, name),
        image_size=args.image_size,
        budget=budget,
        seed=args.seed,
        progress=not args.json,
    )


def _people(paths: list[str]) -> int:
    from facebone.attacks.base import identity_of

    return len({identity_of(path) for path in paths})


def _text(result: dict[str, Any]) -> str:
    lines = [
        f"model inversion of {result['backbone']} templates ({result['method']}, "
        f"{result['budget']} {result['budget_counts']}), scored by {result['evaluator']}",
        f"{'threat model':<13} {'targets':>7} {'SAR I@0.1%':>10} {'SAR I@1%':>9} "
        f"{'SAR II@0.1%':>11} {'SAR II@1%':>10} {'SSIM':>6} {'impostor@1%':>11}",
    ]
    for threat, m in result["threat_models"].items():
        type2 = [m["sar"]["type2"][k] for k in ("far_0.001", "far_0.01")]
        lines.append(
            f"{threat:<13} {m['n_targets']:>7} {m['sar']['type1']['far_0.001']:10.1%} "
            f"{m['sar']['type1']['far_0.01']:9.1%} "
            + " ".join(f"{v:>10.1%}" if v is not None else f"{'n/a':>10}" for v in type2)
            + f" {m['ssim']:6.3f} {m['impostor_acceptance']['far_0.01']:11.1%}"
        )
    people = next(iter(result["threat_models"].values()))["n_type2_targets"]
    lines.append(
        f"chance (the FAR): 0.1% and 1%; impostor: reconstructions accepted as another target "
        f"person; type II over {people} people with other photos"
    )
    if "grid" in result:
        lines.append(f"grid: {result['grid']}")
    return "\n".join(lines)
