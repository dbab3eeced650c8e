"""Template protection: keyed cancelable templates applied before storage and matching.

    protection = create_protection("biohash", dim_in=128, seed=None)   # OS entropy key
    templates = protection.transform(embeddings)                       # (N, K) float32
    protection.save_key("face.key")        # npz, no pickle; the key is the secret
    again = load_key("face.key")

Names: "biohash" (biohash.py).
"""

from facebone.protection.base import (
    KEY_FORMAT,
    PROTECTIONS,
    TemplateProtection,
    create_protection,
    list_protections,
    load_key,
    register_protection,
)
from facebone.protection.biohash import BioHash

__all__ = [
    "KEY_FORMAT",
    "PROTECTIONS",
    "BioHash",
    "TemplateProtection",
    "create_protection",
    "list_protections",
    "load_key",
    "register_protection",
]
