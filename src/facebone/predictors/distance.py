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
from facebone.predictors.base import InvalidPairsError, Predictor, _check_int_vector, sigmoid
from facebone.predictors.registry import register_predictor

_EPS = 1e-12


def fit_logistic_1d(score: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of `p = sigmoid(slope*score + intercept)`, by Newton's method, one
    fit per row of `score` and `y` (shape `(B, n)`: B training sets of n pairs each).

    The score is standardised first and the slope gets a small ridge penalty `l2`, so perfectly
    separable training pairs give a steep but finite slope instead of diverging. Each row is
    fitted on its own (its sums run along the row only, and it stops moving once its step is
    below 1e-10), so a row gives the same numbers alone or among thousands: an attacker's
    shadow calibrations, fitted in one call, equal the predictor's.
    """
    score = np.asarray(score, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu = score.mean(axis=1, keepdims=True)
    sd = score.std(axis=1, keepdims=True)
    if np.any(sd < _EPS):
        raise InvalidPairsError(
            "All training pairs of a source have the same score; cannot calibrate a threshold."
        )
    z = (score - mu) / sd
    w = np.zeros((score.shape[0], 2))
    active = np.arange(score.shape[0])
    for _ in range(100):
        za, ya, wa = z[active], y[active], w[active]
        p = sigmoid(wa[:, :1] * za + wa[:, 1:])
        residual = p - ya
        weight = p * (1.0 - p)
        g0 = np.sum(za * residual, axis=1) + l2 * wa[:, 0]
        g1 = np.sum(residual, axis=1)
        h00 = np.sum(za * za * weight, axis=1) + l2 + 1e-9
        h01 = np.sum(za * weight, axis=1)
        h11 = np.sum(weight, axis=1) + 1e-9
        det = h00 * h11 - h01 * h01
        step = np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=1)
        w[active] = wa - step
        active = active[np.max(np.abs(step), axis=1) >= 1e-10]
        if active.size == 0:
            break
    slope = w[:, 0] / sd[:, 0]
    intercept = w[:, 1] - w[:, 0] * mu[:, 0] / sd[:, 0]
    return slope, intercept


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
            slope, intercept = fit_logistic_1d(s[None, mask], y[None, mask], self.l2)
            slopes.append(float(slope[0]))
            intercepts.append(float(intercept[0]))
        self.slopes_ = np.asarray(slopes)
        self.intercepts_ = np.asarray(intercepts)
        self._set_thresholds()

    def _set_thresholds(self) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -self.intercepts_ / self.slopes_
        self.thresholds_ = {s: float(v) for s, v in zip(self.sources_, t, strict=True)}

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        return self._calibrated(self.score(a, b), src)

    def predict_proba_of_scores(self, scores: Any, source: Any = None) -> np.ndarray:
        """`predict_proba` of pairs whose `score` was computed elsewhere: a system with
        encrypted templates computes cosines under encryption (`protection/ckks.py`)."""
        self._check_fitted()
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
            raise InvalidPairsError("scores must be a non-empty 1-D array of finite numbers.")
        src = (
            np.zeros(s.size, np.int64)
            if source is None
            else _check_int_vector(source, s.size, "source")
        )
        self._check_seen(src)
        return self._calibrated(s, src)

    def _calibrated(self, score: np.ndarray, src: np.ndarray) -> np.ndarray:
        idx = self._source_index(src)
        return sigmoid(self.slopes_[idx] * score + self.intercepts_[idx])

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
