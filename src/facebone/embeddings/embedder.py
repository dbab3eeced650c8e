"""The embedding half of an FR system: several backbones, one detector, one cache."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebone.backbones import Backbone, create_backbone
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.pipeline import embed_faces, embed_images, embed_user_image, user_face
from facebone.faces.detect import Face, FaceDetector


class Embedder:
    """Backbones created once, with embeddings of dataset images memoised per run.

    `dataset` is for images of a data folder (cached on disk, centred-crop fallback);
    `photo` is for a user's photo (a face must be found).
    """

    def __init__(
        self, specs: Sequence[str], cache: EmbeddingCache | None, progress: bool = True
    ) -> None:
        self.specs = list(specs)
        self.backbones: list[Backbone] = [create_backbone(spec) for spec in self.specs]
        self.cache = cache
        self.progress = progress
        self._detector: FaceDetector | None = None
        self._known: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    @property
    def names(self) -> list[str]:
        return [backbone.name for backbone in self.backbones]

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector

    def dataset(self, root: str | Path, paths: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        """{backbone name: {path: embedding}} for dataset images under `root`."""
        root_key = str(Path(root).resolve())
        todo = list(dict.fromkeys(p for p in paths if (root_key, p) not in self._known))
        if todo:
            arrays, _ = embed_images(
                root, todo, self.backbones, self.cache, self.detector, progress=self.progress
            )
            for index, path in enumerate(todo):
                self._known[(root_key, path)] = {n: a[index] for n, a in arrays.items()}
        return {
            name: {path: self._known[(root_key, path)][name] for path in paths}
            for name in self.names
        }

    def photo(
        self, path: str | Path, convert_color: bool = False, face: int = 1
    ) -> dict[str, np.ndarray]:
        """{backbone name: embedding} of face number `face` of a user's photo."""
        return embed_user_image(path, self.backbones, self.detector, convert_color, face)

    def photo_face(
        self, path: str | Path, convert_color: bool = False, face: int = 1
    ) -> tuple[np.ndarray, Face]:
        """A user's photo and its face number `face`, to embed later with `embed_faces`."""
        return user_face(path, self.detector, convert_color, face)

    def embed_faces(
        self, photos: Sequence[tuple[np.ndarray, Face]], names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """{name: (len(photos), dim)} through the backbones named in `names` only."""
        return embed_faces(photos, [b for b in self.backbones if b.name in names])

    def warm_up(self) -> None:
        """Start what a first query would otherwise wait for (dlib's worker processes)."""
        for backbone in self.backbones:
            backbone.warm_up()

    def close(self) -> None:
        for backbone in self.backbones:
            backbone.close()
