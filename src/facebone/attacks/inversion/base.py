"""Model inversion: faces back from leaked templates (embeddings or protected templates).

Every inversion attack follows one contract: `fit(faces, templates)` learns from the
attacker's own aligned faces and their templates (as the attacked system would store them),
`invert(templates)` returns face images for leaked templates. Images are RGB uint8 in the
ArcFace template's coordinates (`faces/align.py`) at `image_size`, so any backbone can align a
reconstruction from the known landmark positions.

    attack = create_attack("decoder", image_size=64, epochs=30, seed=0)
    attack.fit(attacker_faces, attacker_templates)
    images = attack.invert(leaked_templates)

Names: "decoder" (decoder.py, NbNet-style learned decoder), "optimise"
(optimise.py, gradient descent through a differentiable backbone copy), "blackbox"
(blackbox.py, score-only search against the verification service).

`aligned_faces` gives the attacker's (and the evaluator's) aligned crops, with the detected
faces cached by image content beside the embeddings.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from facebone.attacks.base import Attack, AttackError, AttackNotFittedError
from facebone.backbones.base import PREPROCESS_VERSION
from facebone.embeddings.cache import EmbeddingCache, content_hash
from facebone.faces.align import align_face
from facebone.faces.detect import Face, FaceDetector, find_face
from facebone.faces.image import decode_image, read_image_bytes

log = logging.getLogger(__name__)


class InversionAttack(Attack):
    """Leaked templates -> face images (N, image_size, image_size, 3) uint8."""

    family: ClassVar[str] = "inversion"

    image_size: int

    def fit(self, faces: np.ndarray, templates: np.ndarray) -> InversionAttack:
        """Learn from the attacker's aligned faces (N, S, S, 3) uint8 and their templates
        (N, K); returns self."""
        faces, templates = np.asarray(faces), np.asarray(templates, dtype=np.float32)
        if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
            raise AttackError(f"faces must be (N, S, S, 3) uint8 images, got {faces.shape}")
        if templates.ndim != 2 or len(templates) != len(faces) or len(faces) < 2:
            raise AttackError(
                f"templates must be (N, K) with one row per face (N >= 2); got "
                f"{templates.shape} for {len(faces)} faces"
            )
        self.template_dim_ = templates.shape[1]
        return self._fit(faces, templates)

    def invert(self, templates: np.ndarray) -> np.ndarray:
        """Reconstructed faces of leaked templates (N, K)."""
        if not hasattr(self, "template_dim_"):
            raise AttackNotFittedError(f"{type(self).__name__}: call fit before invert")
        templates = np.asarray(templates, dtype=np.float32)
        if templates.ndim != 2 or templates.shape[1] != self.template_dim_:
            raise AttackError(
                f"templates must have shape (N, {self.template_dim_}) as in fit, "
                f"got {templates.shape}"
            )
        return self._invert(templates)

    @abstractmethod
    def _fit(self, faces: np.ndarray, templates: np.ndarray) -> InversionAttack: ...

    @abstractmethod
    def _invert(self, templates: np.ndarray) -> np.ndarray: ...


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """Aligned crops (N, S, S, 3) uint8 at `size` px: the template scales with the crop."""
    import cv2

    if faces.shape[1] == size:
        return faces
    area = cv2.INTER_AREA if size < faces.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(face, (size, size), interpolation=area) for face in faces])


def _face_vector(face: Face) -> np.ndarray:
    return np.concatenate(
        [face.box, face.landmarks.ravel(), [face.score, float(face.detected)]]
    ).astype(np.float32)


def _vector_face(vector: np.ndarray) -> Face:
    return Face(vector[:4], vector[4:14].reshape(5, 2), float(vector[14]), bool(vector[15]))


def aligned_faces(
    root: str | Path,
    paths: Sequence[str],
    size: int = 112,
    cache: EmbeddingCache | None = None,
    detector: FaceDetector | None = None,
) -> np.ndarray:
    """Dataset images under `root` detected (centred-crop fallback, as for embeddings) and
    aligned on the ArcFace template at `size` px. Detected faces are cached by image content:
    detection is the slow step, alignment a warp."""
    root = Path(root)
    key = f"yunet-faces-p{PREPROCESS_VERSION}"
    crops = []
    for path in paths:
        data = read_image_bytes(root / path)
        digest = content_hash(data)
        image = decode_image(data, str(root / path), convert_color=True)
        vector = cache.get(key, digest) if cache else None
        if vector is None or vector.shape != (16,):
            detector = detector or FaceDetector()
            vector = _face_vector(find_face(detector, image, str(root / path), fallback=True))
            if cache:
                cache.put(key, digest, vector)
        crops.append(align_face(image, _vector_face(vector).landmarks, size))
    return np.stack(crops) if crops else np.empty((0, size, size, 3), np.uint8)
