"""Template protection: keyed cancelable templates applied before storage and matching.

    protection = create_protection("biohash", dim_in=128, seed=None)   # OS entropy key
    templates = protection.transform(embeddings)                       # (N, K) float32
    protection.save_key("face.key")        # npz, no pickle; the key is the secret
    again = load_key("face.key")
    save_keys("system.key", {"sface": p1, "dlib": p2})   # one key per backbone

Names: "biohash" (biohash.py), "ckks" (ckks.py: templates encrypted under CKKS and matched
under encryption; import `facebone.protection.ckks` for its store and scores, which this package
leaves out so that BioHash never waits for TenSEAL to import).
"""

from facebone.protection.base import (
    PROTECTIONS,
    TemplateProtection,
    create_protection,
    list_protections,
    register_protection,
)
from facebone.protection.biohash import BioHash
from facebone.protection.keyfile import (
    KEY_FORMAT,
    keys_fingerprint,
    load_key,
    load_keys,
    save_keys,
)

__all__ = [
    "KEY_FORMAT",
    "PROTECTIONS",
    "BioHash",
    "TemplateProtection",
    "create_protection",
    "keys_fingerprint",
    "list_protections",
    "load_key",
    "load_keys",
    "register_protection",
    "save_keys",
]
