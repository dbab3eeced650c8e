"""On-disk embedding cache keyed by image content hash, backbone and preprocessing version.

Layout: `ROOT/<backbone cache key>/<hash[:2]>/<hash>.npy`. One small file per entry keeps
writes atomic and lets several runs share the cache; a damaged entry (unreadable, or holding
NaN, infinite or all-zero values, which no backbone produces for a face) is recomputed.
"""

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from facebone.atomic import write_bytes_atomic

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`$FACEBONE_CACHE`, else `~/.cache/facebone/embeddings`."""
    configured = os.environ.get("FACEBONE_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "facebone" / "embeddings"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def embedding_problem(embedding: np.ndarray) -> str | None:
    """Why `embedding` cannot be a face's embedding, or None if it can."""
    if not np.issubdtype(embedding.dtype, np.floating):
        return f"{embedding.dtype} values"
    if not np.isfinite(embedding).all():
        return "NaN or infinite values"
    if not embedding.any():
        return "all zeros"
    return None


class EmbeddingCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, backbone_key: str, digest: str) -> Path:
        return self.root / backbone_key / digest[:2] / f"{digest}.npy"

    def get(self, backbone_key: str, digest: str) -> np.ndarray | None:
        path = self._path(backbone_key, digest)
        try:
            embedding = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("damaged cache entry %s (%s); recomputing it", path, error)
            return None
        problem = embedding_problem(embedding)
        if problem:
            log.warning("damaged cache entry %s (%s); recomputing it", path, problem)
            return None
        return embedding

    def put(self, backbone_key: str, digest: str, embedding: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(embedding, dtype=np.float32), allow_pickle=False)
        write_bytes_atomic(self._path(backbone_key, digest), buffer.getvalue())
