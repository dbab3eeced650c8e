"""The contract every template protection follows, and their registry.

A template protection maps embeddings `(N, D)` to protected templates `(N, K)` with a secret
key, before they are stored or matched: a leaked template then gives neither the face nor a
match against templates made with another key (cancelable biometrics). The key is drawn, not
learned from data: `fit` only draws it (from `seed`, or the operating system's entropy when
`seed` is None) and `transform` draws it on first use, so `create_protection(...).transform(X)`
works as it stands.

Keys are saved without pickle (`keyfile.py`). The key is the secret: keep its file apart from
the model directory, which records only `fingerprint()`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facebone.errors import FaceBoneError
from facebone.registry import Registry

# By name, so that BioHash never waits for TenSEAL to import.
PROTECTIONS: Registry[TemplateProtection] = Registry(
    "template protection",
    builtin_modules={"biohash": "facebone.protection.biohash", "ckks": "facebone.protection.ckks"},
)


class TemplateProtection(ABC):
    """Keyed, non-invertible-without-the-key map from embeddings to templates."""

    name: ClassVar[str]
    # True where the templates are stored encrypted and matched under encryption by their cosine
    # with a plain probe (`ckks.py`): such a protection has `encrypted_cosines`, and a system
    # can only calibrate those cosines (the cosine predictor).
    encrypts: ClassVar[bool] = False

    def __init__(self, dim_in: int, dim_out: int | None = None, seed: int | None = None) -> None:
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"dim_in": self.dim_in, "dim_out": self.dim_out, "seed": self.seed}

    @property
    def output_dim(self) -> int:
        """K, the width of a protected template (`dim_out`, else `dim_in`)."""
        return self.dim_in if self.dim_out is None else self.dim_out

    def _check_dims(self) -> None:
        if not isinstance(self.dim_in, int) or self.dim_in < 1:
            raise FaceBoneError(f"dim_in must be a positive integer, got {self.dim_in!r}")
        if not isinstance(self.output_dim, int) or not 1 <= self.output_dim <= self.dim_in:
            raise FaceBoneError(
                f"dim_out must be an integer from 1 to dim_in ({self.dim_in}), got {self.dim_out!r}"
            )

    def fit(self, X: Any = None, y: Any = None) -> TemplateProtection:
        """Draw the key; embeddings `X` (N, D), where given, tune the data-dependent part a
        protection may have (BioHash's centre); returns self."""
        self._check_dims()
        data = None if X is None else self._checked(X)
        self.key_ = self._draw_key(np.random.default_rng(self.seed), data)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Protected templates `(N, K)` float32 of embeddings `(N, D)`."""
        if not hasattr(self, "key_"):
            self.fit()
        return self._transform(self._checked(X)).astype(np.float32)

    def _checked(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.dim_in:
            raise FaceBoneError(
                f"embeddings must have shape (N, {self.dim_in}) for this key, got {X.shape}"
            )
        if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
            raise FaceBoneError("embeddings must be finite real numbers")
        return X.astype(np.float64)

    def fingerprint(self) -> str:
        """SHA-256 of the key: tells whether a key file is the one a model was made with,
        without the model holding the key."""
        if not hasattr(self, "key_"):
            self.fit()
        digest = hashlib.sha256(f"{self.name}\n".encode())
        for name in sorted(self.key_):
            array = np.ascontiguousarray(self.key_[name])
            digest.update(f"{name}:{array.dtype.str}:{array.shape}\n".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def save_key(self, path: str | Path, overwrite: bool = False) -> None:
        """Write this key alone to a key file (`keyfile.save_keys`)."""
        from facebone.protection.keyfile import save_keys

        save_keys(path, {self.name: self}, overwrite)

    @classmethod
    def from_key(cls, key: dict[str, np.ndarray]) -> TemplateProtection:
        """A keyed protection from its key arrays; raises KeyError/ValueError when damaged."""
        protection = cls(**cls._params_of_key(key))
        protection._check_dims()
        protection.key_ = dict(key)
        return protection

    @abstractmethod
    def _draw_key(self, rng: np.random.Generator, X: np.ndarray | None) -> dict[str, np.ndarray]:
        """The key arrays, drawn from `rng` (and tuned on embeddings `X` where given)."""

    @classmethod
    @abstractmethod
    def _params_of_key(cls, key: dict[str, np.ndarray]) -> dict[str, Any]:
        """Constructor arguments that the key arrays imply (checks their shapes)."""

    @abstractmethod
    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Templates of valid float64 embeddings."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def register_protection(name: str):
    """Class decorator: make the protection available as `create_protection(name, ...)`."""

    def decorate(cls: type[TemplateProtection]) -> type[TemplateProtection]:
        cls.name = name
        return PROTECTIONS.register(name)(cls)

    return decorate


def create_protection(name: str, **kwargs: Any) -> TemplateProtection:
    """A new protection; its key is drawn on `fit` or first `transform`."""
    return PROTECTIONS.create(name, **kwargs)


def list_protections(pattern: str = "*") -> list[str]:
    return PROTECTIONS.list(pattern)
