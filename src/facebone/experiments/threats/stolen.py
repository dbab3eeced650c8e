"""What a thief who stole the template store (and the model folder, not the key files) can
read, and what it makes of its own faces to learn from.

- No template protection: the stored templates are the embeddings (through any public,
  keyless transform the system applies); the thief computes the same of its own faces with the
  public backbone.
- A keyed protection (BioHash): the store holds keyed templates; the thief knows the scheme but
  not the key, so it learns from templates of its own faces made with a key of its own,
  fitted to its own faces as the system's was to the system's.
- Encryption (CKKS): the store holds ciphertexts and no secret key. The thief reads bytes: as
  its "templates" it takes consecutive float32 windows of the stored bytes, one per enrolled
  face, and learns from the same windows of its own faces' ciphertexts under a key of its own.
  Any attack then measures what such bytes give away.
"""

from __future__ import annotations

import numpy as np

from facebone.protection import create_protection


def thief_templates(
    system, backbone: str, own: np.ndarray, enrolled: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(the thief's templates of its own faces `own`, the stored templates of the enrolled
    faces `enrolled`) for one backbone of a fitted `FRSystem`."""
    if system.template_protection is None:
        return system.protect(backbone, own), system.protect(backbone, enrolled)
    # A suppression is fitted on public faces: the thief applies it as the system does.
    own = system.suppress(backbone, own)
    protection = system.protections_[backbone]
    encrypts = getattr(protection, "encrypts", False)
    params = {**protection.get_params(), "seed": None if encrypts else seed}
    own_key = create_protection(system.template_protection, **params).fit(own)
    if encrypts:
        return (
            _ciphertext_windows(own_key, own, seed),
            _ciphertext_windows(protection, system.suppress(backbone, enrolled), seed + 1),
        )
    return own_key.transform(own), system.protect(backbone, enrolled)


def _ciphertext_windows(key, embeddings: np.ndarray, seed: int) -> np.ndarray:
    """The stored bytes of `embeddings` encrypted under `key`, read as `float_windows`."""
    n, dim = embeddings.shape
    return float_windows(key.encrypt(key.transform(embeddings)).to_bytes(), n, dim, seed)


def float_windows(data: bytes, count: int, dim: int, seed: int) -> np.ndarray:
    """What a thief takes for `count` templates of width `dim` from stored bytes `data` (a
    store file, ciphertexts): consecutive float32 windows from the middle of the bytes, where
    the ciphertexts lie (the start holds the header and the public context, alike in every
    store), dealt in a random order (`seed`): a ciphertext holds one coordinate of many faces,
    so no window belongs to a face, and a window's place must not stand in for the face's
    place in the store. Made finite and scaled to unit length, as a template is."""
    start = len(data) // 2
    floats = np.frombuffer(data[start : start + count * dim * 4], dtype=np.float32)
    if len(floats) != count * dim:
        raise ValueError(f"{len(data)} bytes hold no {count} windows of {dim} floats")
    with np.errstate(invalid="ignore", over="ignore"):  # random bytes hold NaNs and infinities
        windows = np.nan_to_num(floats.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    windows = np.clip(windows, -1e6, 1e6).reshape(count, dim)[
        np.random.default_rng(seed).permutation(count)
    ]
    norms = np.linalg.norm(windows, axis=1, keepdims=True)
    return windows / np.where(norms > 0, norms, 1.0)
