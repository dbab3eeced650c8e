"""How well reconstructed faces pass for their people: the success attack rate (SAR) and SSIM.

As in the face-reconstruction literature (NbNet; Mai et al. 2019), a reconstruction succeeds
when an *independent* backbone (not the attacked one, so that an image fitted to the attacked
network's quirks does not count) accepts it as the target person at the threshold for a given
false-accept rate (FAR). Thresholds come from impostor pairs of people other than the targets.
Type I compares with the very image whose template leaked, type II with the person's other
images (so only people with two images or more count). A random face passes at the FAR
itself: the chance rate. Reconstructions are not photos, though (blurred, or tuned to a
network), so the share of them accepted as *someone else* among the target people is measured
too (`impostor_acceptance`): the chance rate these images actually meet. SSIM compares the
reconstruction with the aligned original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.attacks.base import identity_of
from facebone.attacks.inversion.base import resize_faces
from facebone.backbones.base import Backbone
from facebone.errors import FaceBoneError
from facebone.faces.align import ARCFACE_TEMPLATE_112
from facebone.faces.detect import Face

FARS = (0.001, 0.01)
# Where the face sits in a 112 px ArcFace crop: the box a detector draws around the template's
# landmarks, for backbones that locate landmarks themselves within a box (dlib).
TEMPLATE_BOX_112 = np.array([10.0, 15.0, 92.0, 92.0], dtype=np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def far_thresholds(
    embeddings: np.ndarray, identities: Sequence[str], fars: Sequence[float] = FARS
) -> dict[float, float]:
    """Cosine thresholds at which a share `far` of the impostor pairs (every two images of
    different people among `embeddings`) is accepted."""
    identities = np.asarray(identities)
    scores = cosine_matrix(embeddings, embeddings)
    upper = np.triu(np.ones(scores.shape, dtype=bool), k=1)
    impostors = scores[upper & (identities[:, None] != identities[None, :])]
    if len(impostors) < 1 / min(fars):
        raise FaceBoneError(
            f"{len(impostors)} impostor pairs cannot set a threshold at FAR {min(fars)}; "
            "give more images of more people"
        )
    return {far: float(np.quantile(impostors, 1 - far, method="higher")) for far in fars}


def embed_reconstructions(images: np.ndarray, evaluator: Backbone) -> np.ndarray:
    """The evaluator's embeddings of faces in ArcFace template coordinates: scaled to 112 px,
    then aligned by the evaluator from the template's known landmarks."""
    crops = resize_faces(images, 112)
    face = Face(TEMPLATE_BOX_112, ARCFACE_TEMPLATE_112, 1.0)
    return evaluator.embed([evaluator.align(np.ascontiguousarray(c), face) for c in crops])


@dataclass(frozen=True)
class ReconstructionScores:
    """SAR per type and FAR, mean SSIM, and how many targets each figure counts."""

    sar: dict[str, dict[str, float]]
    ssim: float
    chance: dict[str, float]
    impostor_acceptance: dict[str, float]
    n_targets: int
    n_type2_targets: int
    n_type2_comparisons: int

    def to_dict(self) -> dict:
        return {
            "sar": self.sar,
            "ssim": self.ssim,
            "chance": self.chance,
            "impostor_acceptance": self.impostor_acceptance,
            "n_targets": self.n_targets,
            "n_type2_targets": self.n_type2_targets,
            "n_type2_comparisons": self.n_type2_comparisons,
        }


def mean_ssim(images: np.ndarray, originals: np.ndarray) -> float:
    """Mean SSIM of each reconstruction with its aligned original, at the reconstruction's size."""
    from skimage.metrics import structural_similarity

    originals = resize_faces(originals, images.shape[1])
    return float(
        np.mean(
            [
                structural_similarity(a, b, channel_axis=2, data_range=255)
                for a, b in zip(images, originals, strict=True)
            ]
        )
    )


def score_reconstructions(
    reconstructions: np.ndarray,
    originals: np.ndarray,
    targets: Sequence[str],
    reference: dict[str, np.ndarray],
    evaluator: Backbone,
    thresholds: dict[float, float],
) -> ReconstructionScores:
    """SAR and SSIM of `reconstructions` of the images `targets` (paths), whose aligned
    originals are `originals`. `reference` maps every image of the target people to the
    evaluator's embedding of it (type I uses the target image itself, type II the others)."""
    if not len(targets):
        raise FaceBoneError("no target images to score")
    embedded = embed_reconstructions(reconstructions, evaluator)
    by_person: dict[str, list[str]] = {}
    for path in reference:
        by_person.setdefault(identity_of(path), []).append(path)
    type1 = cosine_matrix(embedded, np.stack([reference[t] for t in targets])).diagonal()
    type2: list[float] = []
    people = set()
    for row, target in enumerate(targets):
        others = [p for p in by_person[identity_of(target)] if p != target]
        if others:
            people.add(identity_of(target))
            scores = cosine_matrix(
                embedded[row : row + 1], np.stack([reference[p] for p in others])
            )
            type2.extend(scores.ravel().tolist())
    references = list(reference)
    everyone = cosine_matrix(embedded, np.stack([reference[p] for p in references]))
    owners = np.array([identity_of(p) for p in references])
    strangers = owners[None, :] != np.array([identity_of(t) for t in targets])[:, None]
    impostors = everyone[strangers]
    sar = {
        "type1": {f"far_{far}": float(np.mean(type1 >= t)) for far, t in thresholds.items()},
        "type2": {
            f"far_{far}": float(np.mean(np.asarray(type2) >= t)) if type2 else None
            for far, t in thresholds.items()
        },
    }
    return ReconstructionScores(
        sar=sar,
        ssim=mean_ssim(reconstructions, originals),
        chance={f"far_{far}": far for far in thresholds},
        impostor_acceptance={
            f"far_{far}": float(np.mean(impostors >= t)) for far, t in thresholds.items()
        },
        n_targets=len(targets),
        n_type2_targets=len(people),
        n_type2_comparisons=len(type2),
    )


def write_grid(
    path: str | Path, originals: np.ndarray, rows: dict[str, np.ndarray], size: int = 64
) -> Path:
    """A PNG grid, one row per target: the aligned original, then each method's (or threat
    model's) reconstruction, in the order of `rows`; written atomically."""
    import cv2

    from facebone.atomic import atomic_path

    columns = [resize_faces(originals, size)] + [resize_faces(r, size) for r in rows.values()]
    grid = np.concatenate([np.concatenate(list(images), axis=0) for images in columns], axis=1)
    path = Path(path)
    with atomic_path(path) as tmp:
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FaceBoneError(f"cannot encode the grid image {path}")
        tmp.write_bytes(encoded.tobytes())
    return path
