"""One inversion run: the attacker's and the targets' data, an attack fitted and scored.

`InversionData.prepare` embeds and aligns the attacker's images and the target images once
(cached by content), and sets the independent evaluator's thresholds from impostor pairs of
the attacker's people, who are disjoint from the targets. `evaluate` fits an attack on the
attacker's templates and scores its reconstructions of the leaked ones; the caller chooses
the templates, which is how a threat model (raw embeddings, a protection key of the
attacker's own, the stolen key) enters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.attacks.base import identity_of
from facebone.attacks.inversion.base import InversionAttack, aligned_faces
from facebone.attacks.inversion.reconstruction import (
    ReconstructionScores,
    far_thresholds,
    score_reconstructions,
)
from facebone.backbones.base import Backbone
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.pipeline import embed_images
from facebone.errors import FaceBoneError


@dataclass
class InversionData:
    """Aligned faces (ArcFace template, 112 px) and the attacked backbone's embeddings of the
    attacker's images and of the targets; the evaluator's embeddings of the targets and its
    thresholds."""

    attacker_paths: list[str]
    attacker_faces: np.ndarray
    attacker_embeddings: np.ndarray
    target_paths: list[str]
    target_faces: np.ndarray
    target_embeddings: np.ndarray
    reference: dict[str, np.ndarray]
    thresholds: dict[float, float]
    evaluator: Backbone

    @classmethod
    def prepare(
        cls,
        root: str | Path,
        attacker_paths: Sequence[str],
        target_paths: Sequence[str],
        attacked: Backbone,
        evaluator: Backbone,
        cache: EmbeddingCache | None,
        progress: bool = False,
    ) -> InversionData:
        """`target_paths`: the images whose templates leaked. The evaluator's references are
        every target person's images among them (type II compares with the others)."""
        attacker_paths, target_paths = list(attacker_paths), list(target_paths)
        shared = {identity_of(p) for p in attacker_paths} & {identity_of(p) for p in target_paths}
        if shared:
            raise FaceBoneError(
                f"the attacker's images and the targets share {len(shared)} people (e.g. "
                f"{sorted(shared)[0]}); give identity-disjoint sets"
            )
        if evaluator.name == attacked.name:
            raise FaceBoneError(f"the evaluator must differ from the attacked {attacked.name}")
        paths = attacker_paths + target_paths
        embedded, _ = embed_images(root, paths, [attacked, evaluator], cache, progress=progress)
        n = len(attacker_paths)
        faces = aligned_faces(root, paths, 112, cache)
        own = embedded[evaluator.name]
        return cls(
            attacker_paths=attacker_paths,
            attacker_faces=faces[:n],
            attacker_embeddings=embedded[attacked.name][:n],
            target_paths=target_paths,
            target_faces=faces[n:],
            target_embeddings=embedded[attacked.name][n:],
            reference=dict(zip(target_paths, own[n:], strict=True)),
            thresholds=far_thresholds(own[:n], [identity_of(p) for p in attacker_paths]),
            evaluator=evaluator,
        )

    def evaluate(
        self,
        attack: InversionAttack,
        own_templates: np.ndarray,
        leaked_templates: np.ndarray,
        targets: slice = slice(None),
    ) -> tuple[ReconstructionScores, np.ndarray, float]:
        """Fit `attack` on the attacker's faces and `own_templates`, invert the leaked
        templates of the `targets` rows; returns the scores, the reconstructions and the
        seconds that fitting and inverting took."""
        start = time.perf_counter()
        attack.fit(self.attacker_faces, own_templates)
        images = attack.invert(leaked_templates[targets])
        seconds = time.perf_counter() - start
        scores = score_reconstructions(
            images,
            self.target_faces[targets],
            self.target_paths[targets],
            self.reference,
            self.evaluator,
            self.thresholds,
        )
        return scores, images, seconds


def first_per_person(paths: Sequence[str], n: int) -> list[int]:
    """Indices of the first image of each of the first `n` people in `paths`: the grid's rows."""
    seen: dict[str, int] = {}
    for index, path in enumerate(paths):
        seen.setdefault(identity_of(path), index)
    return list(seen.values())[:n]
