"""BioHashing-style cancelable templates (Teoh, Ngo and Goh, 2004).

The key is a random orthogonal matrix `Q` (D x K): the QR decomposition of a Gaussian matrix,
with the signs of R's diagonal moved into Q so that Q is uniformly (Haar) distributed. A template
is `sign(x Q)` in {-1, +1}^K. An orthogonal projection keeps the angles between embeddings, so
the sign bits keep their cosine similarity (two bits differ with probability angle / pi); without
Q the bits neither match templates made with another key nor give the embedding back, and a
leaked template is revoked by drawing a new key. K < D keeps fewer bits (less utility).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facebone.protection.base import TemplateProtection, register_protection


@register_protection("biohash")
class BioHash(TemplateProtection):
    def _draw_key(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        gaussian = rng.standard_normal((self.dim_in, self.output_dim))
        q, r = np.linalg.qr(gaussian)
        signs = np.where(np.diag(r) < 0, -1.0, 1.0)
        return {"projection": q * signs}

    @classmethod
    def _params_of_key(cls, key: dict[str, np.ndarray]) -> dict[str, Any]:
        projection = key["projection"]
        if projection.ndim != 2 or projection.dtype.kind != "f":
            raise ValueError("projection must be a 2-D float matrix")
        if not np.all(np.isfinite(projection)):
            raise ValueError("projection holds NaN or infinite values")
        dim_in, dim_out = (int(n) for n in projection.shape)
        return {"dim_in": dim_in, "dim_out": dim_out}

    def _transform(self, X: np.ndarray) -> np.ndarray:
        # Ties (exact zeros) go to +1 so every template is strictly +-1.
        return np.where(X @ self.key_["projection"] >= 0, 1.0, -1.0)
