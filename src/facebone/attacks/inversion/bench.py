"""Speed of the model-inversion attacks on this machine, for `facebone bench --inversion`.

Each figure times the attack's own `fit` / `invert` on real aligned faces and their SFace
templates, with a short budget, and scales it to the attack's default budget: decoder training
in faces per second per epoch, gradient inversion in steps per second through the SFace copy,
black-box search in service queries per second. Speed does not depend on whose templates are
inverted, so the attacker's own templates stand in for the leaked ones.
"""

from __future__ import annotations

import inspect
import time

import numpy as np

from facebone.attacks.registry import ATTACKS, create_attack
from facebone.backbones.base import Backbone


def _default(name: str, parameter: str):
    """The registered attack's default for `parameter`: the budget the figures scale to."""
    return inspect.signature(ATTACKS.get(name)).parameters[parameter].default


def bench_decoder(
    faces: np.ndarray,
    templates: np.ndarray,
    attacker_faces: int,
    epochs: int,
    device: str,
    seed: int,
    image_size: int = 64,
) -> dict:
    """Faces per second per epoch of decoder training, and the implied minutes for the
    default epochs over `attacker_faces` faces."""
    params = {"image_size": image_size, "device": device, "seed": seed}
    create_attack("decoder", epochs=1, **params).fit(faces[:4], templates[:4])  # warm-up
    start = time.perf_counter()
    create_attack("decoder", epochs=epochs, **params).fit(faces, templates)
    rate = epochs * len(faces) / (time.perf_counter() - start)
    default_epochs = _default("decoder", "epochs")
    return {
        "faces_per_s": round(rate, 1),
        "faces": len(faces),
        "epochs_timed": epochs,
        "image_size": image_size,
        "default_epochs": default_epochs,
        "attacker_faces": attacker_faces,
        "implied_minutes": round(default_epochs * attacker_faces / rate / 60, 2),
    }


def bench_optimise(
    faces: np.ndarray,
    templates: np.ndarray,
    targets: int,
    steps: int,
    device: str,
    image_size: int = 64,
) -> dict:
    """Gradient steps per second through the differentiable SFace copy, on one batch of the
    first `targets` templates, started from the mean face (no decoder)."""
    from facebone.backbones.onnx_torch import differentiable_backbone

    leaked = templates[:targets]
    params = {"image_size": image_size, "batch_size": len(leaked), "device": device}
    params["backbone"] = differentiable_backbone("sface")
    # Warm-up: the copy moved to the device, kernels chosen.
    create_attack("optimise", budget=1, **params).fit(faces, templates).invert(leaked)
    attack = create_attack("optimise", budget=steps, **params).fit(faces, templates)
    start = time.perf_counter()
    attack.invert(leaked)
    rate = steps / (time.perf_counter() - start)
    default_steps = _default("optimise", "budget")
    return {
        "steps_per_s": round(rate, 2),
        "batch": len(leaked),
        "steps_timed": steps,
        "image_size": image_size,
        "default_steps": default_steps,
        "implied_seconds_per_batch": round(default_steps / rate, 1),
    }


def bench_blackbox(
    faces: np.ndarray,
    templates: np.ndarray,
    backbone: Backbone,
    targets: int,
    queries: int,
    seed: int,
    image_size: int = 64,
) -> dict:
    """Queries per second of the score-only search for the first `targets` templates,
    `queries` each. The service is `backbone`'s cosine score: embedding the probe is what a
    query costs, the predictor on one pair adds little."""
    from facebone.attacks.inversion.reconstruction import embed_reconstructions

    def score(images: np.ndarray, records: np.ndarray) -> np.ndarray:
        probes = embed_reconstructions(images, backbone)
        norms = np.linalg.norm(probes, axis=1) * np.linalg.norm(records, axis=1)
        return (probes * records).sum(axis=1) / norms

    attack = create_attack(
        "blackbox", oracle=score, image_size=image_size, budget=queries, seed=seed
    ).fit(faces, templates)
    leaked = templates[:targets]
    start = time.perf_counter()
    attack.invert(leaked)
    asked = queries // attack.population * attack.population * len(leaked)
    rate = asked / (time.perf_counter() - start)
    default_queries = _default("blackbox", "budget")
    return {
        "queries_per_s": round(rate, 1),
        "targets": len(leaked),
        "queries_timed": asked,
        "population": attack.population,
        "image_size": image_size,
        "default_queries_per_target": default_queries,
        "implied_seconds_per_target": round(default_queries / rate, 1),
    }
