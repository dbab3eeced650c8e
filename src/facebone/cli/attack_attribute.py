"""`facebone attack attribute`: private traits (gender, CelebA's 40 attributes) of target people
from leaked templates or from the verification service's answers."""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

METHODS = ("template", "blackbox")


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "attribute",
        help="attribute inference: a target person's gender (or a CelebA attribute)",
        description=(
            "Learn an attribute on the attacker's own people and infer it for target people "
            "it never saw: from their leaked templates (--method template; with template "
            "protection, once with a key of the attacker's own and once with the stolen key) "
            "or from the system's answers against reference photos (--method blackbox). "
            "LFW data has gender from first names (ambiguous names dropped); CelebA data has "
            "its 40 attributes. Without --targets/--attacker the target_test and attacker "
            "people of --seed's `facebone pairs` protocol are used, with all their photos."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    add_data_argument(parser)
    parser.add_argument(
        "--attribute",
        default="gender",
        help="gender, or a CelebA attribute name such as Smiling (default: %(default)s)",
    )
    parser.add_argument("--targets", type=Path, help="pairs CSV whose photos are the targets")
    parser.add_argument("--attacker", type=Path, help="pairs CSV of the attacker's own photos")
    parser.add_argument("--method", choices=METHODS, default="template", help="%(choices)s")
    parser.add_argument(
        "--classifier",
        choices=("knn", "logistic"),
        default="knn",
        help="template method: nearest-neighbour vote or logistic regression",
    )
    parser.add_argument(
        "--neighbors", type=int, default=15, help="neighbours that vote (knn and blackbox)"
    )
    parser.add_argument(
        "--references",
        type=int,
        help="blackbox: reference photos drawn from the attacker's (default: all of them); "
        "each target photo costs one query per reference",
    )
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="protocol seed, attacker's key and draws"
    )
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.data.attributes import load_attribute_labels

    require_dir(args.data, "data folder")
    if (args.targets is None) != (args.attacker is None):
        raise FaceBoneError("give --targets and --attacker together, or neither")
    if args.neighbors < 1:
        raise FaceBoneError(f"--neighbors must be at least 1, got {args.neighbors}")
    if args.references is not None and args.references < 2:
        raise FaceBoneError(f"--references must be at least 2, got {args.references}")
    labels = load_attribute_labels(args.data, args.attribute)
    attacker, targets = _roles(args, labels)
    system = load_model(args, open_cache(args), progress=not args.json)
    try:
        if args.method == "template":
            found = _template(args, system, attacker, targets)
        else:
            found = _blackbox(args, system, attacker, targets)
    finally:
        system.embedder_.close()
    result = {
        "attribute": labels.attribute,
        "positive": labels.positive,
        "negative": labels.negative,
        "method": args.method,
        "people_kept": labels.people_kept,
        "people_dropped": labels.people_dropped,
        "attacker": attacker.counts(),
        "targets": targets.counts(),
        "template_protection": system.template_protection,
        **found,
    }
    emit(result, args.json, _text(result))
    return 0


class Role:
    """One side's labelled photos: paths, 0/1 labels, persons, and the photos left out for
    having no label."""

    def __init__(self, labels, paths: Sequence[str]) -> None:
        images, self.labels, self.unlabelled = labels.select(list(paths))
        self.paths = [image.path for image in images]
        self.people = [image.identity for image in images]

    def counts(self) -> dict[str, int]:
        return {
            "images": len(self.paths),
            "people": len(set(self.people)),
            "people_positive": len(
                {p for p, y in zip(self.people, self.labels, strict=True) if y == 1}
            ),
            "images_unlabelled": len(self.unlabelled),
        }


def _roles(args: argparse.Namespace, labels) -> tuple[Role, Role]:
    """The attacker's and the targets' labelled photos, checked to share no person."""
    from facebone.data.attributes import dataset_images
    from facebone.data.pairs import DEFAULT_FRACTIONS, ROLES, read_pairs, split_identities

    if args.targets is not None:
        attacker = Role(labels, read_pairs(args.attacker, args.data).images)
        targets = Role(labels, read_pairs(args.targets, args.data).images)
    else:
        images = dataset_images(args.data)
        people = dict(
            zip(ROLES, split_identities(images, DEFAULT_FRACTIONS, args.seed), strict=True)
        )
        attacker, targets = (
            Role(labels, [image.path for image in images if image.identity in people[role]])
            for role in ("attacker", "target_test")
        )
    shared = set(attacker.people) & set(targets.people)
    if shared:
        raise FaceBoneError(
            f"--targets and --attacker share {len(shared)} people (e.g. {min(shared)}): the "
            "attack must be scored on people the attacker never saw"
        )
    for flag, role in (("--attacker", attacker), ("--targets", targets)):
        if len(set(role.labels.tolist())) < 2:
            raise FaceBoneError(
                f"{flag}: its labelled photos ({len(role.paths)}) need both values of "
                f"{args.attribute!r}"
            )
    return attacker, targets


def _template(args: argparse.Namespace, system, attacker: Role, targets: Role) -> dict[str, Any]:
    """Per backbone: the attack on the templates the system stores. A protected system is
    attacked as the protection assumes (the attacker trains on templates made with a key of
    its own) and with the system's key (stolen, or the attacker's faces enrolled in it)."""
    import numpy as np

    from facebone.attacks.attribute.template import TemplateAttributeAttack
    from facebone.protection import create_protection

    attack = TemplateAttributeAttack(args.classifier, args.neighbors, seed=args.seed)
    table = system.embedder_.dataset(args.data, attacker.paths + targets.paths)
    backbones = {}
    for name in system.embedder_.names:
        own, target = (
            np.stack([table[name][p] for p in role.paths]) for role in (attacker, targets)
        )
        stored = system.protect(name, target)
        if system.template_protection is None:
            backbones[name] = _score(attack, system.protect(name, own), stored, attacker, targets)
            continue
        params = {**system.protections_[name].get_params(), "seed": args.seed}
        own_key = create_protection(system.template_protection, **params)
        backbones[name] = {
            **_score(attack, own_key.transform(own), stored, attacker, targets),
            "stolen_key": _score(attack, system.protect(name, own), stored, attacker, targets),
        }
    strongest = max(backbones, key=lambda name: backbones[name]["auc"])
    headline = {k: v for k, v in backbones[strongest].items() if k != "stolen_key"}
    return {**headline, "backbone": strongest, "backbones": backbones}


def _score(attack, own, stored, attacker: Role, targets: Role) -> dict:
    """Fit `attack` on the attacker's templates `own`, score it on the targets' `stored`."""
    from facebone.attacks.attribute.base import evaluate_attribute, prior_class

    attack.fit(own, attacker.labels, attacker.people)
    prior = prior_class(attacker.labels, attacker.people)
    return evaluate_attribute(targets.labels, attack.predict_proba(stored), targets.people, prior)


def _blackbox(args: argparse.Namespace, system, attacker: Role, targets: Role) -> dict[str, Any]:
    from facebone.attacks.attribute.base import evaluate_attribute, prior_class
    from facebone.attacks.attribute.blackbox import BlackBoxAttributeAttack
    from facebone.attacks.system_target import system_query_fn

    attack = BlackBoxAttributeAttack(args.neighbors, args.references, args.seed)
    attack.fit(attacker.paths, attacker.labels, attacker.people)
    scores = attack.predict_proba(
        system_query_fn(system, args.data), targets.paths, progress=not args.json
    )
    prior = prior_class(attacker.labels, attacker.people)
    return {
        **evaluate_attribute(targets.labels, scores, targets.people, prior),
        "queries": attack.n_queries(len(targets.paths)),
    }


def _text(result: dict[str, Any]) -> str:
    dropped = sum(result["people_dropped"].values())
    lines = [
        f"{result['attribute']} ({result['positive']} vs {result['negative']}) by "
        f"{result['method']}: {result['people_kept']} people labelled, {dropped} dropped; "
        f"attacker {result['attacker']['people']} people, targets "
        f"{result['targets']['people']} people ({result['targets']['images']} photos)",
        f"{'':<22} {'bal.acc':>8} {'AUC':>6} {'acc.':>6}",
    ]

    def row(name: str, m: dict) -> str:
        return f"{name:<22} {m['balanced_accuracy']:8.3f} {m['auc']:6.3f} {m['accuracy']:6.3f}"

    if "backbones" in result:
        for name, metrics in result["backbones"].items():
            label = name if result["template_protection"] is None else f"{name}, own key"
            lines.append(row(label, metrics))
            if "stolen_key" in metrics:
                lines.append(row(f"{name}, stolen key", metrics["stolen_key"]))
    else:
        lines.append(row(f"service ({result['queries']} q.)", result))
    baseline = result["baseline"]
    lines.append(
        f"{'prior (always ' + str(baseline['class']) + ')':<22} {0.5:8.3f} {0.5:6.3f} "
        f"{baseline['accuracy']:6.3f}"
    )
    return "\n".join(lines)
