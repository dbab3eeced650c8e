"""Embeddings of dataset images, computed once per image content and backbone, then cached.

Names are imported on first use (PEP 562), so that reading the cache's location does not
load OpenCV and the backbones.
"""

import importlib

_MODULES = {
    "EmbedReport": "facebone.embeddings.pipeline",
    "EmbeddingCache": "facebone.embeddings.cache",
    "default_cache_dir": "facebone.embeddings.cache",
    "embed_images": "facebone.embeddings.pipeline",
    "embed_user_image": "facebone.embeddings.pipeline",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
