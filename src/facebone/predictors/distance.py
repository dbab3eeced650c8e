"""Distance predictors: a fixed score on the pair plus a per-source logistic calibration.

Each predictor computes one number per pair from the L2-normalised embeddings and turns it
into a same-person probability with a 1-D logistic regression fitted separately for every
source (backbone): `p = sigmoid(slope * score + intercept)`. Different backbones put
same-person pairs at very different distances, so one global threshold would be wrong for
all but one of them. `thresholds_[source]` is the score where `p = 0.5`.

All four scores are unchanged by zero padding: padded coordinates are 0 in both vectors and
add nothing to any sum below.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from facebone.params import Constraints, Interval
from facebone.predictors.base import InvalidPairsError, Predictor, sigmoid
from facebone.predictors.registry import register_predictor

_EPS = 1e-12


def _fit_logistic_1d(score: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, float]:
    """Slope and intercept of `p = sigmoid(slope*score + intercept)`, by Newton's method.

    The score is standardised first and the slope gets a small ridge penalty `l2`, so perfectly
    separable training pairs give a steep but finite slope instead of diverging.
    """
    mu = float(score.mean())
    sd = float(score.std())
    if sd < _EPS:
        raise InvalidPairsError(
            "All training pairs of a source have the same score; cannot calibrate a threshold."
        )
    z = (score - mu) / sd
    x = np.stack([z, np.ones_like(z)], axis=1)
    w = np.zeros(2)
    penalty = np.diag([l2, 0.0])
    for _ in range(100):
        p = sigmoid(x @ w)
        grad = x.T @ (p - y) + penalty @ w
        hess = (x * (p * (1.0 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope = w[0] / sd
    intercept = w[1] - w[0] * mu / sd
    return float(slope), float(intercept)


class DistancePredictor(Predictor):
    """Shared machinery: subclasses only define `score(a, b)` on normalised embeddings.

    Parameters
    ----------
    l2 : ridge penalty on the standardised calibration slope (keeps separable data finite).
    """

    _parameter_constraints: ClassVar[Constraints] = {
        "l2": [Interval(float, 0, None, closed="neither")]
    }

    def __init__(self, l2: float = 1.0) -> None:
        self.l2 = l2

    @staticmethod
    @abstractmethod
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One float per pair for L2-normalised rows `a`, `b`; must be padding-safe."""

    def _fit(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        s = self.score(a, b)
        slopes, intercepts = [], []
        for source in self.sources_:
            mask = src == source
            slope, intercept = _fit_logistic_1d(s[mask], y[mask].astype(np.float64), self.l2)
            slopes.append(slope)
            intercepts.append(intercept)
        self.slopes_ = np.asarray(slopes)
        self.intercepts_ = np.asarray(intercepts)
        self._set_thresholds()

    def _set_thresholds(self) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -self.intercepts_ / self.slopes_
        self.thresholds_ = {s: float(v) for s, v in zip(self.sources_, t, strict=True)}

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        idx = self._source_index(src)
        return sigmoid(self.slopes_[idx] * self.score(a, b) + self.intercepts_[idx])

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"slopes": self.slopes_.tolist(), "intercepts": self.intercepts_.tolist()}, {}

    def _load_fitted_state(self, fitted: Any, tensors: dict[str, np.ndarray]) -> None:
        slopes = np.asarray(fitted["slopes"], dtype=np.float64)
        intercepts = np.asarray(fitted["intercepts"], dtype=np.float64)
        k = len(self.sources_)
        if slopes.shape != (k,) or intercepts.shape != (k,):
            raise ValueError(f"expected {k} slopes and intercepts, one per source")
        if not (np.all(np.isfinite(slopes)) and np.all(np.isfinite(intercepts))):
            raise ValueError("calibration parameters are not finite")
        if tensors:
            raise ValueError(f"unexpected tensors {sorted(tensors)}")
        self.slopes_ = slopes
        self.intercepts_ = intercepts
        self._set_thresholds()


@register_predictor("cosine")
class CosinePredictor(DistancePredictor):
    """Cosine similarity `a . b` of the normalised embeddings (higher means same person)."""

    @staticmethod
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, b)


@register_predictor("euclidean")
class EuclideanPredictor(DistancePredictor):
    """Euclidean distance `||a - b||` of the normalised embeddings (`sqrt(2 - 2 cos)`)."""

    @staticmethod
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a - b, axis=1)


@register_predictor("chi-square")
class ChiSquarePredictor(DistancePredictor):
    """Symmetric chi-square distance for signed vectors: `0.5 * sum((a-b)^2 / (|a|+|b|+eps))`.

    The textbook form divides by `a + b`, which is only valid for non-negative histograms;
    using absolute values keeps every term non-negative for signed embeddings. Padded
    coordinates give `0 / eps = 0`.
    """

    @staticmethod
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum((a - b) ** 2 / (np.abs(a) + np.abs(b) + _EPS), axis=1)


@register_predictor("bhattacharyya")
class BhattacharyyaPredictor(DistancePredictor):
    """Bhattacharyya distance `-ln(sum(sqrt(p * q)))` between distributions made from embeddings.

    A unit vector `a` becomes the distribution `p = concat(max(a, 0)^2, max(-a, 0)^2)`: it sums
    to `||a||^2 = 1`, keeps the sign of every coordinate (unlike `a^2` alone), and padded
    zeros get probability 0. The coefficient then reduces to `sum(max(a*b, 0))`, the part of
    the cosine carried by coordinates of agreeing sign. It is clipped below at 1e-12 so
    pairs with no agreeing coordinate get a large finite distance.
    """

    @staticmethod
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        coefficient = np.sum(np.maximum(a * b, 0.0), axis=1)
        return -np.log(np.clip(coefficient, _EPS, 1.0))
