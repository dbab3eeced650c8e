"""What every backbone offers: its own alignment and a batched `embed`."""

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from facebone.faces.align import align_face
from facebone.faces.detect import Face

# Bump when detection or alignment changes, so cached embeddings are recomputed.
PREPROCESS_VERSION = 1


class Backbone(ABC):
    """A pretrained face embedder: aligned face crop -> embedding vector.

    Subclasses set `name`, `embedding_dim`, `input_size`, `batch_size` and `weights_id` (a hash
    of the weights), and implement `embed`. The default alignment is the ArcFace 5-point
    template at `input_size`.
    """

    name: str
    embedding_dim: int
    input_size: int
    batch_size: int
    weights_id: str

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Crop of `face` as this backbone expects it (RGB uint8)."""
        return align_face(image, face.landmarks, self.input_size)

    @abstractmethod
    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (N, embedding_dim) float32 of aligned RGB uint8 crops."""

    @property
    def cache_key(self) -> str:
        """Identifies what the embeddings depend on: model, weights and preprocessing."""
        return f"{self.name}-{self.weights_id[:16]}-p{PREPROCESS_VERSION}"

    def warm_up(self) -> None:
        """Start worker processes now rather than on the first batch; a no-op for most."""
        return None

    def close(self) -> None:
        """Release worker processes or sessions; a no-op for most backbones."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.embedding_dim})"


def batches(items: Sequence, size: int):
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
