"""What a thief who stole the template store (and the model folder, not the key files) can
read, and what it makes of its own faces to learn from.

- No template protection: the stored templates are the embeddings (through any public,
  keyless transform the system applies); the thief computes the same of its own faces with the
  public backbone.
- A keyed protection (BioHash): the store holds keyed templates; the thief knows the scheme but
  not the key, so it learns from templates of its own faces made with a key of its own,
  fitted to its own faces as the system's was to the system's.
"""

from __future__ import annotations

import numpy as np

from facebone.protection import create_protection


def thief_templates(
    system, backbone: str, own: np.ndarray, enrolled: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(the thief's templates of its own faces `own`, the stored templates of the enrolled
    faces `enrolled`) for one backbone of a fitted `FRSystem`."""
    stored = system.protect(backbone, enrolled)
    if system.template_protection is None:
        return system.protect(backbone, own), stored
    params = {**system.protections_[backbone].get_params(), "seed": seed}
    own_key = create_protection(system.template_protection, **params).fit(own)
    return own_key.transform(own), stored
