"""Decode, detect, align and embed dataset images through one or several backbones.

Detection runs once per image for all backbones; only images missing from a backbone's cache
are processed. The next chunk is decoded and detected in a background thread while the current
one is embedded, since OpenCV, PIL and dlib release the GIL.
"""

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facebone.backbones.base import Backbone
from facebone.embeddings.cache import EmbeddingCache, content_hash, embedding_problem
from facebone.errors import FaceBoneError
from facebone.faces.detect import Face, FaceDetector, find_face
from facebone.faces.image import decode_image, read_image_bytes

log = logging.getLogger(__name__)

CHUNK = 32


@dataclass
class EmbedReport:
    """What a run did: how many images came from the cache, were computed, or fell back.

    An image counts as cached only if every backbone had it; `computed_by_backbone` says
    how many each backbone computed.
    """

    n_images: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_fallback: int = 0
    computed_by_backbone: dict[str, int] = field(default_factory=dict)


@dataclass
class _Prepared:
    index: int
    image: np.ndarray
    face: Face


def embed_images(
    root: str | Path,
    paths: Sequence[str],
    backbones: Sequence[Backbone],
    cache: EmbeddingCache | None = None,
    detector: FaceDetector | None = None,
    fallback: bool = True,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], EmbedReport]:
    """Embeddings of `paths` (relative to `root`) for each backbone, as {name: (N, D) array}.

    `fallback=True` is for centred-crop datasets such as LFW: an image without a detected face
    uses the centred face instead, counted in the report. Grayscale images are converted.
    """
    root = Path(root)
    report = EmbedReport(n_images=len(paths))
    digests = [content_hash(read_image_bytes(root / path)) for path in paths]
    results = {b.name: np.zeros((len(paths), b.embedding_dim), np.float32) for b in backbones}
    needs: dict[str, set[int]] = {b.name: set() for b in backbones}
    for backbone in backbones:
        for index, digest in enumerate(digests):
            cached = cache.get(backbone.cache_key, digest) if cache else None
            if cached is not None and cached.shape == (backbone.embedding_dim,):
                results[backbone.name][index] = cached
            else:
                needs[backbone.name].add(index)
    todo = sorted(set().union(*needs.values()))
    report.n_cached = len(paths) - len(todo)
    report.n_computed = len(todo)
    report.computed_by_backbone = {name: len(indices) for name, indices in needs.items()}
    if not todo:
        return results, report
    detector = detector or FaceDetector()
    chunks = [todo[start : start + CHUNK] for start in range(0, len(todo), CHUNK)]
    names = ", ".join(b.name for b in backbones if needs[b.name])
    bar = tqdm(total=len(todo), desc=f"embedding with {names}", unit="img", disable=not progress)
    for prepared in _prefetch(
        lambda chunk: _prepare(root, paths, chunk, detector, fallback), chunks
    ):
        report.n_fallback += sum(not item.face.detected for item in prepared)
        for backbone in backbones:
            items = [item for item in prepared if item.index in needs[backbone.name]]
            if not items:
                continue
            crops = [backbone.align(item.image, item.face) for item in items]
            embeddings = backbone.embed(crops)
            for item, embedding in zip(items, embeddings, strict=True):
                problem = embedding_problem(embedding)
                if problem:
                    raise FaceBoneError(
                        f"{root / paths[item.index]}: {backbone.name} gave an embedding with "
                        f"{problem}"
                    )
                results[backbone.name][item.index] = embedding
                if cache:
                    cache.put(backbone.cache_key, digests[item.index], embedding)
        bar.update(len(prepared))
    bar.close()
    if report.n_fallback:
        log.warning(
            "no face detected in %d of %d images; used the centred-crop face for them",
            report.n_fallback,
            report.n_computed,
        )
    return results, report


def _prepare(
    root: Path, paths: Sequence[str], chunk: list[int], detector: FaceDetector, fallback: bool
) -> list[_Prepared]:
    prepared = []
    for index in chunk:
        name = str(root / paths[index])
        image = decode_image(read_image_bytes(root / paths[index]), name, convert_color=True)
        face = find_face(detector, image, name, fallback)
        prepared.append(_Prepared(index, image, face))
    return prepared


def _prefetch(work, items: list) -> Iterator:
    """Yield work(item) for each item, computing the next one in a thread meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(work, items[0]) if items else None
        for position in range(len(items)):
            result = pending.result()
            if position + 1 < len(items):
                pending = pool.submit(work, items[position + 1])
            yield result


def user_face(
    path: str | Path, detector: FaceDetector, convert_color: bool = False, number: int = 1
) -> tuple[np.ndarray, Face]:
    """A user's photo, decoded, and its face number `number` (see `find_face`); a photo
    without a face is an error."""
    image = decode_image(read_image_bytes(path), str(path), convert_color)
    return image, find_face(detector, image, str(path), fallback=False, number=number)


def embed_faces(
    photos: Sequence[tuple[np.ndarray, Face]], backbones: Sequence[Backbone]
) -> dict[str, np.ndarray]:
    """{backbone name: (len(photos), dim) embeddings}, one batch per backbone (dlib spreads
    a batch over its workers, so the two photos of a verification are embedded at once)."""
    return {b.name: b.embed([b.align(image, face) for image, face in photos]) for b in backbones}


def embed_user_image(
    path: str | Path,
    backbones: Sequence[Backbone],
    detector: FaceDetector,
    convert_color: bool = False,
    number: int = 1,
) -> dict[str, np.ndarray]:
    """Embeddings of one user-supplied photo's face number `number`."""
    embedded = embed_faces([user_face(path, detector, convert_color, number)], backbones)
    return {name: vectors[0] for name, vectors in embedded.items()}
