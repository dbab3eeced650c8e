"""The contract every FaceBone predictor follows, and the checks they all share.

A predictor decides whether two face embeddings belong to the same person. It follows the
scikit-learn estimator contract: the constructor only stores its arguments, `fit` learns and
returns `self`, learned state ends in an underscore, and `predict_proba` / `predict` raise
`NotFittedError` before `fit`.

Embeddings are float arrays `(N, D)`, not necessarily L2-normalised: every predictor normalises
them itself. `source` says which backbone produced each pair (integers `0..K-1`; `None` means all
`0`). FaceBone's mitigation trains one predictor on embeddings from several backbones that the
system zero-pads to a common width, so every score and feature here is unchanged by zero padding.

Persistence never uses pickle: `get_state()` returns a JSON-serialisable config and a dict of
numpy arrays (saved with safetensors by the system), and `predictor_from_state` rebuilds a
fitted predictor from them.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facebone.errors import FaceBoneError
from facebone.params import Constraints, check_params

STATE_FORMAT = 1
_NORM_EPS = 1e-12


class NotFittedError(FaceBoneError):
    """A predictor was asked for predictions or its state before `fit`."""


class InvalidPairsError(FaceBoneError, ValueError):
    """Embeddings, labels or sources have the wrong shape, type or values."""


class PredictorStateError(FaceBoneError):
    """A saved predictor state is damaged or does not match the predictor it claims to be."""


def l2_normalize(e: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (float64); an all-zero row stays zero."""
    e = np.asarray(e, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(norms, _NORM_EPS)


def check_pairs(
    e1: Any, e2: Any, source: Any = None, y: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate one batch of pairs; return normalised `e1`, `e2`, int `source` and int `y`."""
    a = np.asarray(e1)
    b = np.asarray(e2)
    for name, arr in (("e1", a), ("e2", b)):
        if arr.ndim != 2:
            raise InvalidPairsError(
                f"{name} must be a 2-D array of embeddings (N, D), got shape {arr.shape}."
            )
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise InvalidPairsError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
        if not np.all(np.isfinite(arr)):
            raise InvalidPairsError(f"{name} contains NaN or infinite values.")
    if a.shape != b.shape:
        raise InvalidPairsError(
            f"e1 and e2 must have the same shape (one row per pair), got {a.shape} and {b.shape}."
        )
    n = a.shape[0]
    if n == 0:
        raise InvalidPairsError("No pairs given: e1 and e2 have zero rows.")
    if a.shape[1] == 0:
        raise InvalidPairsError("Embeddings have zero width (D = 0).")
    src = _check_int_vector(source, n, "source") if source is not None else np.zeros(n, np.int64)
    if np.any(src < 0):
        raise InvalidPairsError("source must hold non-negative backbone indices (0..K-1).")
    labels = None
    if y is not None:
        labels = _check_int_vector(y, n, "y")
        if not np.all((labels == 0) | (labels == 1)):
            raise InvalidPairsError("y must hold 1 (same person) or 0 (different people) only.")
    return l2_normalize(a), l2_normalize(b), src, labels


def _check_int_vector(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise InvalidPairsError(
            f"{name} must have shape ({n},), one value per pair, got {arr.shape}."
        )
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if (
        np.issubdtype(arr.dtype, np.floating)
        and np.all(np.isfinite(arr))
        and np.all(arr == np.round(arr))
    ):
        return arr.astype(np.int64)
    raise InvalidPairsError(f"{name} must hold integers, got dtype {arr.dtype}.")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


class Predictor(ABC):
    """Base class: a same-person probability for pairs of embeddings.

    Subclasses set `name` (the registry name), implement `_fit`, `_predict_proba`,
    `_fitted_state` and `_load_fitted_state`, list their constructor arguments in `__init__`
    only (they are read back by `get_params`) and declare what each accepts in
    `_parameter_constraints` (`facebone.params`), which the study configuration and the CLI
    read too.
    """

    name: ClassVar[str] = ""
    _parameter_constraints: ClassVar[Constraints] = {}

    # ---- public API -------------------------------------------------------------------------

    def fit(self, e1: Any, e2: Any, y: Any, source: Any = None) -> Predictor:
        """Learn from labelled pairs (`y`: 1 same person, 0 different); return `self`."""
        a, b, labels, src = self._prepare_fit(e1, e2, y, source)
        try:
            self._fit(a, b, labels, src)
        except BaseException:
            self._clear_fitted()  # never leave a half-fitted predictor that looks fitted
            raise
        return self

    @classmethod
    def fit_many(cls, predictors: Sequence[Predictor], datasets: Sequence[tuple]) -> list:
        """Fit `predictors[i]` on `datasets[i] = (e1, e2, y, source)`; predictors that can
        train many models at once (the nn) override this."""
        return [p.fit(*data) for p, data in zip(predictors, datasets, strict=True)]

    def _prepare_fit(
        self, e1: Any, e2: Any, y: Any, source: Any = None, soft: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Checked, normalised `(a, b, y, src)`; sets `sources_` and `n_features_in_`.

        `soft` accepts targets anywhere in [0, 1] (a teacher's probabilities), read as
        same-person at 0.5 and above when checking that every source has both kinds.
        """
        self._clear_fitted()
        self._check_params()
        if y is None:
            raise InvalidPairsError("fit needs labels y: 1 for same-person pairs, 0 otherwise.")
        if soft:
            a, b, src, _ = check_pairs(e1, e2, source)
            labels = np.asarray(y, dtype=np.float64)
            if labels.shape != (a.shape[0],) or not np.all((labels >= 0) & (labels <= 1)):
                raise InvalidPairsError("soft targets must be one probability in [0, 1] per pair.")
        else:
            a, b, src, labels = check_pairs(e1, e2, source, y)
        sources = np.unique(src)
        for s in sources:
            present = np.unique(labels[src == s] >= 0.5)
            if present.size < 2:
                raise InvalidPairsError(
                    f"Source {int(s)} has only {'same' if present[0] else 'different'}-person "
                    "pairs; fitting needs both kinds for every source."
                )
        self.sources_ = tuple(int(s) for s in sources)
        self.n_features_in_ = int(a.shape[1])
        return a, b, labels, src

    def predict_proba(self, e1: Any, e2: Any, source: Any = None) -> np.ndarray:
        """Probability that each pair shows the same person, shape (N,), float64."""
        self._check_fitted()
        a, b, src, _ = check_pairs(e1, e2, source)
        self._check_seen(src)
        return np.asarray(self._predict_proba(a, b, src), dtype=np.float64)

    def predict(self, e1: Any, e2: Any, source: Any = None, threshold: float = 0.5) -> np.ndarray:
        """1 (same person) where the probability reaches `threshold`, else 0; shape (N,)."""
        if not 0.0 <= float(threshold) <= 1.0:
            raise InvalidPairsError(f"threshold must be a probability in [0, 1], got {threshold}.")
        return (self.predict_proba(e1, e2, source) >= threshold).astype(np.int64)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as given (scikit-learn style)."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return {n: getattr(self, n) for n in names}

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-serialisable config, tensors) from which `predictor_from_state` rebuilds this."""
        self._check_fitted()
        fitted, tensors = self._fitted_state()
        config = {
            "format": STATE_FORMAT,
            "name": self.name,
            "params": _jsonable(self.get_params()),
            "sources": list(self.sources_),
            "n_features_in": self.n_features_in_,
            "fitted": fitted,
        }
        return config, {k: np.ascontiguousarray(v) for k, v in tensors.items()}

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Predictor:
        """Rebuild a fitted predictor of this class; damaged state raises PredictorStateError."""
        try:
            if config.get("format") != STATE_FORMAT:
                raise PredictorStateError(
                    f"Unsupported predictor state format {config.get('format')!r} "
                    f"(this FaceBone reads format {STATE_FORMAT})."
                )
            if config.get("name") != cls.name:
                raise PredictorStateError(
                    f"State is for predictor {config.get('name')!r}, not {cls.name!r}."
                )
            params = config["params"]
            if not isinstance(params, dict):
                raise TypeError("params is not a mapping")
            predictor = cls(**_restore_tuples(params))
            predictor._check_params()  # a hand-edited state: options as fit checks them
            predictor.sources_ = tuple(int(s) for s in config["sources"])
            if not predictor.sources_:
                raise ValueError("no sources")
            predictor.n_features_in_ = int(config["n_features_in"])
            predictor._load_fitted_state(config["fitted"], dict(tensors))
        except PredictorStateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            raise PredictorStateError(
                f"Predictor state for {cls.name!r} is damaged or incomplete: {exc}"
            ) from exc
        return predictor

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- for subclasses ---------------------------------------------------------------------

    def _clear_fitted(self) -> None:
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)

    def _check_params(self) -> None:
        """The options meet `_parameter_constraints` (subclasses add rules across options)."""
        check_params(type(self).__name__, self._parameter_constraints, self.get_params())

    def _check_fitted(self) -> None:
        if not hasattr(self, "sources_"):
            raise NotFittedError(
                f"This {self.name!r} predictor is not fitted yet; call fit(e1, e2, y) first."
            )

    def _check_seen(self, src: np.ndarray) -> None:
        unseen = sorted(set(np.unique(src).tolist()) - set(self.sources_))
        if unseen:
            raise InvalidPairsError(
                f"source {unseen} was never seen in fit; this predictor knows sources "
                f"{list(self.sources_)}."
            )

    def _source_index(self, src: np.ndarray) -> np.ndarray:
        """Position of each pair's source within `sources_` (sources are known to be seen)."""
        return np.searchsorted(np.asarray(self.sources_), src)

    @abstractmethod
    def _fit(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        """Learn from normalised pairs; `sources_` and `n_features_in_` are already set."""

    @abstractmethod
    def _predict_proba(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        """Same-person probabilities for normalised pairs whose sources were all seen in fit."""

    @abstractmethod
    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Subclass-specific fitted state: (JSON-serialisable dict, arrays)."""

    @abstractmethod
    def _load_fitted_state(self, fitted: Any, tensors: dict[str, np.ndarray]) -> None:
        """Inverse of `_fitted_state`; raise KeyError/ValueError/TypeError on damaged input."""


def _jsonable(value: Any) -> Any:
    """Tuples become lists tagged so that `_restore_tuples` turns them back into tuples."""
    if isinstance(value, tuple):
        return {"__tuple__": [_jsonable(v) for v in value]}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot store non-finite parameter {value!r}")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_restore_tuples(v) for v in value["__tuple__"])
        return {k: _restore_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_tuples(v) for v in value]
    return value
