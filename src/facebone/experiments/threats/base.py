"""What the threat families share: the context of one target's attacks, the figure each attack
yields, chance levels, and a content-addressed cache for results that repeat (a decoder
inverting the same templates for several systems is trained once)."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebone.atomic import write_text_atomic
from facebone.attacks.base import identity_of
from facebone.data.pairs import Pair
from facebone.data.text_files import parse_json
from facebone.embeddings.cache import EmbeddingCache
from facebone.experiments.execution import EmbedderPool

# A figure above its chance band is unlikely (p < 0.05) from attacks that learned nothing; the
# band of the strongest of `n_tests` attacks is Bonferroni's (as for membership).
CHANCE_ALPHA = 0.05


@dataclass(frozen=True)
class ThreatContext:
    """What one target's threat attacks may use: the attacker's own pairs (its people), the
    enrolled people's pairs (target_test: their templates are in the store), the backbones
    (public), the cache and the target's seed."""

    root: str
    embedders: EmbedderPool
    attacker: Sequence[Pair]
    enrolled: Sequence[Pair]
    seed: int
    cache: EmbeddingCache | None = None


@dataclass(frozen=True)
class ThreatFigure:
    """One attack's result in one setting: the headline figure (higher = more leaked) beside
    its chance level and goal, and every figure it measured."""

    attack: str
    setting: str
    metric: str
    value: float
    chance: float
    goal: float | None
    n_targets: int
    seconds: float
    metrics: Mapping[str, Any] = field(default_factory=dict)


def evaluate_threat(family: str, spec: Any, target: Any, context: ThreatContext) -> list:
    """The figures of attack `spec` (a `studies.config.AttackSpec`) of `family` against a
    trained target (`evaluation.TrainedTarget`)."""
    module = importlib.import_module(f"facebone.experiments.threats.{family}")
    return module.evaluate(spec, target, context)


def images_of(pairs: Sequence[Pair]) -> list[str]:
    """The distinct images of `pairs`, sorted."""
    return sorted({path for pair in pairs for path in (pair.image1, pair.image2)})


def first_images(paths: Sequence[str], n: int) -> list[str]:
    """The first image of each person, then second images, ..., until `n`: as many people as
    `n` allows, each counted once before anyone twice."""
    by_person: dict[str, list[str]] = {}
    for path in sorted(paths):
        by_person.setdefault(identity_of(path), []).append(path)
    rounds = max((len(v) for v in by_person.values()), default=0)
    ordered = [v[k] for k in range(rounds) for v in by_person.values() if k < len(v)]
    return ordered[:n]


def binomial_chance(rate: float, n: int, n_tests: int = 1) -> float:
    """The share of `n` trials that the best of `n_tests` chance successes at `rate` stays
    under with probability 1 - alpha (one-sided binomial band)."""
    from scipy.stats import binom

    return float(binom.ppf(1 - CHANCE_ALPHA / n_tests, n, rate) / n)


def balanced_accuracy_chance(n_positive: int, n_negative: int, n_tests: int = 1) -> float:
    """The balanced accuracy the best of `n_tests` guesses that know nothing stays under with
    probability 1 - alpha: the normal band of (TPR + TNR) / 2 at 0.5 for these class sizes."""
    from scipy.stats import norm

    sd = 0.5 * np.sqrt(0.25 / max(n_positive, 1) + 0.25 / max(n_negative, 1))
    return float(0.5 + norm.ppf(1 - CHANCE_ALPHA / n_tests) * sd)


def digest(*parts: Any) -> str:
    """SHA-256 of arrays (their bytes, shape and dtype) and JSON-able values."""
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            hasher.update(f"{array.dtype}{array.shape}".encode())
            hasher.update(array.tobytes())
        else:
            hasher.update(json.dumps(part, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


def cached_result(
    cache: EmbeddingCache | None, key: str, compute: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`compute()`'s JSON result, kept under the cache folder by `key` (a `digest` of all it
    depends on): a study that meets the same work again (the same templates inverted for
    another system) reads it back."""
    if cache is None:
        return compute()
    path = Path(cache.root) / "threats" / f"{key}.json"
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result))
    return result
