"""Black-box inversion: a face found by asking the verification service for scores only.

The attacker sees neither the template nor the network: it submits probe faces against a
target's enrolled record and reads the service's score. It searches a face space built from
its own faces (the principal components of its aligned faces, eigenfaces) with a natural
evolution strategy (Wierstra et al. 2014): each round, `population` probes around the current
face (antithetic pairs), scores turned into centred ranks, a step along the rank-weighted
directions. `budget` is the number of queries per target.

The oracle is `score(images (N, S, S, 3) uint8, records (N, K)) -> (N,)`: the service
comparing each probe with the enrolled record of its row. The attack never reads the records;
it only names, per probe, whose record to compare with, as a claimed identity does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from facebone.attacks.base import AttackError
from facebone.attacks.inversion.base import InversionAttack, resize_faces
from facebone.attacks.registry import register_attack

ScoreOracle = Callable[[np.ndarray, np.ndarray], np.ndarray]


@register_attack("blackbox")
class BlackBoxInversion(InversionAttack):
    """Score-only search over `components` eigenfaces of the attacker's faces."""

    def __init__(
        self,
        oracle: ScoreOracle,
        image_size: int = 64,
        budget: int = 400,
        population: int = 20,
        components: int = 48,
        step: float = 0.5,
        sigma: float = 0.5,
        seed: int | None = 0,
        progress: bool = False,
    ) -> None:
        self.oracle = oracle
        self.image_size = image_size
        self.budget = budget
        self.population = population
        self.components = components
        self.step = step
        self.sigma = sigma
        self.seed = seed
        self.progress = progress

    def _fit(self, faces: np.ndarray, templates: np.ndarray) -> BlackBoxInversion:
        """Eigenfaces of the attacker's faces; `templates` are not needed (the search learns
        identity from the service's scores alone)."""
        if self.population < 2 or self.population % 2 or self.budget < self.population:
            raise AttackError(
                f"population must be an even number >= 2 and budget at least population; got "
                f"population {self.population}, budget {self.budget}"
            )
        pixels = resize_faces(faces, self.image_size).reshape(len(faces), -1) / 255.0
        self.mean_ = pixels.mean(axis=0)
        _, singular, vt = np.linalg.svd(pixels - self.mean_, full_matrices=False)
        k = min(self.components, len(faces) - 1)
        # Components scaled by their spread: a unit step in any direction is one typical face.
        self.basis_ = vt[:k] * (singular[:k, None] / np.sqrt(len(faces)))
        return self

    def _images(self, coefficients: np.ndarray) -> np.ndarray:
        pixels = np.clip(self.mean_ + coefficients @ self.basis_, 0, 1)
        shape = (len(coefficients), self.image_size, self.image_size, 3)
        return (pixels * 255).round().astype(np.uint8).reshape(shape)

    def _invert(self, templates: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        n, k, half = len(templates), len(self.basis_), self.population // 2
        current = np.zeros((n, k))
        # Weight of the probe ranked r-th (0: lowest score): centred ranks, the best +0.5.
        shaping = np.tile(np.arange(self.population) / (self.population - 1) - 0.5, (n, 1))
        records = np.repeat(templates, self.population, axis=0)
        rounds = range(self.budget // self.population)
        for _ in tqdm(rounds, desc="searching by scores", disable=not self.progress):
            noise = rng.standard_normal((n, half, k))
            noise = np.concatenate([noise, -noise], axis=1)
            probes = current[:, None, :] + self.sigma * noise
            scores = np.asarray(
                self.oracle(self._images(probes.reshape(-1, k)), records), dtype=np.float64
            ).reshape(n, self.population)
            weights = np.take_along_axis(shaping, np.argsort(np.argsort(scores, axis=1)), axis=1)
            current += self.step * np.einsum("np,npk->nk", weights, noise) / half
        return self._images(current)


def service_oracle(system, name: str, output=None) -> ScoreOracle:
    """The verification service as the black-box attacker meets it: a probe face against the
    enrolled template of a row, answered with the system's same-person probability as the
    service's `output` policy (`system.output_policy.OutputPolicy`, None: as it is) shows it."""
    from facebone.attacks.inversion.reconstruction import embed_reconstructions

    index = system.embedder_.names.index(name)
    backbone = system.embedder_.backbones[index]

    def score(images: np.ndarray, records: np.ndarray) -> np.ndarray:
        probes = system.protect(name, embed_reconstructions(images, backbone))
        width = system.embedding_dim_
        pad = ((0, 0), (0, width - probes.shape[1]))
        sources = np.full(len(probes), index)
        answers = system.predictor_.predict_proba(
            np.pad(probes, pad), np.pad(records, pad), sources
        )
        return answers if output is None else output(answers)

    return score
