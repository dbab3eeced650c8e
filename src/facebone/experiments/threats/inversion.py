"""Model inversion against one target: faces back from the templates a thief reads in the
stolen store (`decoder`, `optimise`), or from the service's scores alone (`blackbox`).

Every stored backbone's templates are attacked and the strongest counts. The headline is SAR
type I at FAR 0.1%: the share of reconstructions that an independent backbone (dlib for SFace
templates, SFace for dlib's) accepts as the very image whose template leaked, at the threshold
where 0.1% of impostor pairs of the attacker's people pass; chance is that FAR itself, with a
binomial band for the number of targets and of backbones attacked. Results are cached by
content (the same templates and options give the same reconstructions), so systems that store
the same templates share one run.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from facebone.attacks.inversion.run import InversionData
from facebone.attacks.registry import create_attack
from facebone.errors import FaceBoneError
from facebone.experiments.threats.base import (
    ThreatContext,
    ThreatFigure,
    binomial_chance,
    cached_result,
    digest,
    first_images,
    images_of,
)
from facebone.experiments.threats.options import ATTACK_SETTINGS, option_values
from facebone.experiments.threats.stolen import thief_templates

FAR = 0.001
GOAL = 0.005  # SAR type I at FAR 0.1% a deployment may allow (chance: 0.1%)
IMAGE_SIZE = 64
# Epochs of the decoder whose output `optimise` starts from: a start, which the gradient
# descent through the backbone refines.
START_EPOCHS = 10
# The attack's own budget argument (None in a study keeps the attack's default).
BUDGET_ARGUMENT = {"decoder": "epochs", "optimise": "budget", "blackbox": "budget"}


def evaluate(spec: Any, target: Any, context: ThreatContext) -> list[ThreatFigure]:
    options = option_values("inversion", dict(spec.options))
    system = target.system
    attacker_paths = images_of(context.attacker)
    target_paths = first_images(images_of(context.enrolled), options["targets"])
    started = time.perf_counter()
    per_backbone = {}
    for name in _attackable(spec.name, system):
        evaluator = "dlib" if name != "dlib" else "sface"
        attacked = context.embedders.get([name]).backbones[0]
        judge = context.embedders.get([evaluator]).backbones[0]
        data = InversionData.prepare(
            context.root, attacker_paths, target_paths, attacked, judge, context.cache
        )
        invert = functools.partial(_invert, spec.name, options, data)
        if spec.name == "blackbox":
            # The service matches its own records; the attacker never reads them. Its answers
            # depend on the whole system, so the search is not cached.
            records = system.protect(name, data.target_embeddings)
            own = system.protect(name, data.attacker_embeddings)
            per_backbone[name] = invert(own, records, system, name, context.seed, target.output)
            continue
        own, leaked = thief_templates(
            system, name, data.attacker_embeddings, data.target_embeddings, context.seed
        )
        key = digest("inversion", spec.name, options, context.seed, name, evaluator, own, leaked)
        per_backbone[name] = cached_result(
            context.cache,
            key,
            functools.partial(invert, own, leaked, system, name, context.seed, target.output),
        )
    strongest = max(per_backbone, key=lambda n: per_backbone[n]["sar"]["type1"][f"far_{FAR}"])
    n = len(target_paths)
    return [
        ThreatFigure(
            attack=spec.name,
            setting=ATTACK_SETTINGS[spec.name],
            metric="SAR type I @ FAR 0.1%",
            value=per_backbone[strongest]["sar"]["type1"][f"far_{FAR}"],
            chance=binomial_chance(FAR, n, n_tests=len(per_backbone)),
            goal=GOAL,
            n_targets=n,
            seconds=time.perf_counter() - started,
            metrics={"strongest_backbone": strongest, "backbones": per_backbone},
        )
    ]


def _attackable(method: str, system) -> list[str]:
    """The stored backbones `method` can attack: `optimise` needs a differentiable copy of the
    backbone (SFace, ONNX and IResNet models; not dlib's)."""
    names = list(system.embedder_.names)
    if method != "optimise":
        return names
    from facebone.backbones.onnx_torch import differentiable_backbone

    usable = []
    for name, spec in zip(names, system.embedder_.specs, strict=True):
        try:
            differentiable_backbone(spec)
        except FaceBoneError:
            continue
        usable.append(name)
    if not usable:
        raise FaceBoneError(f"optimise needs a differentiable backbone; the system has {names}")
    return usable


def _invert(method, options, data, own, leaked, system, backbone, seed, output) -> dict[str, Any]:
    attack = _create(method, options, system, backbone, seed, output)
    scores, _, seconds = data.evaluate(attack, own, leaked)
    return {**scores.to_dict(), "seconds": seconds}


def _create(method: str, options: dict[str, Any], system, backbone: str, seed: int, output):
    budget = {} if options["budget"] is None else {BUDGET_ARGUMENT[method]: options["budget"]}
    common = {"image_size": IMAGE_SIZE, "progress": False, **budget}
    if method == "decoder":
        return create_attack("decoder", seed=seed, **common)
    if method == "optimise":
        from facebone.backbones.onnx_torch import differentiable_backbone

        spec = system.embedder_.specs[system.embedder_.names.index(backbone)]
        return create_attack(
            "optimise",
            backbone=differentiable_backbone(spec),
            decoder=create_attack(
                "decoder", seed=seed, image_size=IMAGE_SIZE, epochs=START_EPOCHS, progress=False
            ),
            **common,
        )
    from facebone.attacks.inversion.blackbox import service_oracle

    return create_attack(
        "blackbox", oracle=service_oracle(system, backbone, output), seed=seed, **common
    )
