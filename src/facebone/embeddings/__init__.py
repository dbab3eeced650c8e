"""Embeddings of dataset images, computed once per image content and backbone, then cached."""

from facebone.embeddings.cache import EmbeddingCache, default_cache_dir
from facebone.embeddings.pipeline import EmbedReport, embed_images, embed_user_image

__all__ = [
    "EmbedReport",
    "EmbeddingCache",
    "default_cache_dir",
    "embed_images",
    "embed_user_image",
]
