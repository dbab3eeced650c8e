"""Attribute suppression: iterative nullspace projection (INLP, Ravfogel et al., ACL 2020).

Face embeddings keep traits they were never asked to learn: gender is readable from SFace
templates of people the attacker never saw. INLP removes what a linear classifier reads: fit a
linear gender classifier on the templates, project the templates onto the nullspace of its
direction, and repeat on the projected templates, until the classifier is at chance on held-out
people or `n_directions` directions are removed. A template becomes

    t = P x / |P x|,   P = I - B^T B,

with `x` the unit embedding and `B` (k x D) the orthonormal directions removed: same width D,
unit length, so every predictor matches it as before. Identity is spread over most of the D
directions, so verification pays little until most are gone (table below).

What it is fitted on matters. The projection is learned from faces with gender labels, and
those must be PUBLIC faces of other people, never the system's members: the directions of
member faces would carry member data into the deployed system. It is no secret either: an
attacker who knows the public set (the worst case, and the case of every study here, where
the attacker's split is the public set) computes the same projection. INLP promises only that
no LINEAR classifier retrained on projected templates reads the attribute; a nonlinear one
(nearest neighbours, an MLP) may still read part of it, and does, until most directions are
gone. On LFW, SFace + dlib `cosine-fusion` with the attacker's pairs as the public faces: the
gender balanced accuracy on target_test people of the black-box attack through the service
(all the attacker's photos as references) and of the attacks retrained on the attacker's
suppressed templates, and the verification AUC and accuracy on target_test pairs; means of
split seeds 0-2:

    directions     service  templates (worst of linear, kNN, MLP)  AUC    accuracy
    0              0.94     0.95 (dlib kNN)                         1.000  0.999
    INLP's stop    0.76     0.72 (dlib MLP)                         1.000  0.999
    20             0.75     0.72 (dlib kNN)                         1.000  0.997
    80             0.67     0.62 (dlib kNN and MLP)                 1.000  0.993
    100            0.61     0.56 (SFace kNN)                        0.997  0.977
    110            0.55     0.55 (dlib kNN)                         0.988  0.954

INLP's held-out stop comes after 3-6 (SFace) and 12-15 (dlib) directions.

Saved state is a JSON-serialisable config and numpy arrays (`get_state` / `from_state`), with a
format version and no pickle, as predictors save theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facebone.errors import FaceBoneError
from facebone.predictors.base import l2_normalize

STATE_FORMAT = 1
NAME = "inlp"
# Folds of the person-grouped cross-validation that tells whether the classifier still reads the
# attribute: every public person is held out once, so the check uses all of them (a single 30%
# hold-out of a few hundred people has a balanced-accuracy noise of about +-0.06).
FOLDS = 5


class AttributeSuppression:
    """Removes up to `n_directions` linear directions of a binary attribute from templates.

    Each round fits an L2-regularised logistic regression (inverse penalty `C`, balanced
    classes, every person weighing the same) on the projected unit templates and removes its
    direction. Before each round the held-out check runs: INLP is run apart on the faces of
    all but one of `FOLDS` folds of people (dealt with `seed`), and each fold's classifier
    guesses the attribute of the people left out; once the balanced accuracy of those guesses
    is at most `0.5 + tolerance`, the classifier is at chance and fitting stops
    (`held_out_accuracy_` holds the figure of each round). `tolerance=None` skips the check
    and removes exactly `n_directions` directions; `n_directions=0` removes nothing.
    """

    def __init__(
        self,
        n_directions: int = 10,
        C: float = 1.0,
        tolerance: float | None = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_directions = n_directions
        self.C = C
        self.tolerance = tolerance
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {
            "n_directions": self.n_directions,
            "C": self.C,
            "tolerance": self.tolerance,
            "seed": self.seed,
        }

    def _check_params(self) -> None:
        n = self.n_directions
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise FaceBoneError(f"n_directions must be a non-negative integer, got {n!r}")
        for name, low in (("C", 0.0), ("tolerance", -0.5)):
            value = getattr(self, name)
            if name == "tolerance" and value is None:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > low:
                raise FaceBoneError(f"{name} must be a number above {low:g}, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise FaceBoneError(f"seed must be a non-negative integer, got {self.seed!r}")

    def fit(self, X: Any, y: Any, people: Sequence[str] | None = None) -> AttributeSuppression:
        """Learn the directions from embeddings `X` (N, D) of public faces, their 0/1 labels
        `y`, and the person of each row (`people`; None counts every row as its own person).
        Returns self."""
        self._check_params()
        X = _checked(X)
        y = np.asarray(y)
        people = [str(i) for i in range(len(X))] if people is None else list(people)
        if y.shape != (len(X),) or len(people) != len(X):
            raise FaceBoneError(f"give one label and one person per embedding ({len(X)} rows)")
        if not np.all((y == 0) | (y == 1)):
            raise FaceBoneError("attribute labels must be 0 or 1")
        y = y.astype(np.int64)
        person_ids = np.unique(people, return_inverse=True)[1]
        folds = _person_folds(person_ids, y, self.seed)
        if any(len(np.unique(y[folds != fold])) < 2 for fold in range(FOLDS)):
            raise FaceBoneError(
                "the public faces must show at least two people with each value of the "
                "attribute, so that some can be held out"
            )
        for key in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, key)
        from threadpoolctl import threadpool_limits

        # One BLAS thread: on matrices this small, OpenBLAS's thread hand-offs made fitting
        # five times slower on a busy two-core machine.
        with threadpool_limits(limits=1, user_api="blas"):
            self._fit(X, y, person_ids, folds)
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, person_ids: np.ndarray, folds: np.ndarray) -> None:
        weights = 1.0 / np.bincount(person_ids)[person_ids]
        # Directions learned on all the faces, and apart on each fold's complement: the
        # held-out check runs on people that took no part in the directions it tests (held-out
        # people whose own directions were removed score below chance, and stop INLP early).
        directions = np.zeros((0, X.shape[1]))
        fold_directions = [directions] * FOLDS
        held_out = []
        for _ in range(self.n_directions):
            if self.tolerance is not None:
                held_out.append(self._held_out_round(X, y, weights, folds, fold_directions))
                if held_out[-1] <= 0.5 + self.tolerance:
                    break
            model = _fit_logistic(_project(X, directions), y, weights, self.C)
            directions = _add_direction(directions, model.coef_[0])
        self.directions_ = directions
        self.held_out_accuracy_ = np.asarray(held_out, dtype=np.float64)
        self.n_features_in_ = int(X.shape[1])
        self.n_samples_ = len(X)
        self.n_people_ = int(person_ids.max()) + 1

    def _held_out_round(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        folds: np.ndarray,
        fold_directions: list[np.ndarray],
    ) -> float:
        """One round on each fold's complement: the balanced accuracy of its classifier on
        the fold's people, before its direction is removed (in `fold_directions`)."""
        guesses = np.zeros_like(y)
        for fold in range(FOLDS):
            out = folds == fold
            projected = _project(X, fold_directions[fold])
            model = _fit_logistic(projected[~out], y[~out], weights[~out], self.C)
            guesses[out] = model.predict(_scaled(projected[out]))
            fold_directions[fold] = _add_direction(fold_directions[fold], model.coef_[0])
        return _balanced_accuracy(y, guesses, weights)

    def transform(self, X: Any) -> np.ndarray:
        """Unit templates `(N, D)` float32 with the learned directions removed."""
        self._check_fitted()
        X = _checked(X)
        if X.shape[1] != self.n_features_in_:
            raise FaceBoneError(
                f"embeddings must have shape (N, {self.n_features_in_}) for this suppression, "
                f"got {X.shape}"
            )
        return _project(X, self.directions_).astype(np.float32)

    def fit_transform(self, X: Any, y: Any, people: Sequence[str] | None = None) -> np.ndarray:
        return self.fit(X, y, people).transform(X)

    def _check_fitted(self) -> None:
        if not hasattr(self, "directions_"):
            raise FaceBoneError("this attribute suppression is not fitted yet; call fit first")

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-serialisable config, arrays) from which `from_state` rebuilds this."""
        self._check_fitted()
        config = {
            "format": STATE_FORMAT,
            "name": NAME,
            "params": self.get_params(),
            "n_features_in": self.n_features_in_,
            "n_samples": self.n_samples_,
            "n_people": self.n_people_,
        }
        arrays = {"directions": self.directions_, "held_out_accuracy": self.held_out_accuracy_}
        return config, {k: np.ascontiguousarray(v) for k, v in arrays.items()}

    @classmethod
    def from_state(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> AttributeSuppression:
        """A fitted suppression from `get_state`'s output; damaged state is a FaceBoneError."""
        if not isinstance(config, dict) or config.get("format") != STATE_FORMAT:
            found = config.get("format") if isinstance(config, dict) else None
            raise FaceBoneError(
                f"unsupported attribute-suppression state format {found!r} "
                f"(this FaceBone reads format {STATE_FORMAT})"
            )
        try:
            if config["name"] != NAME:
                raise ValueError(f"state is for {config['name']!r}, not {NAME!r}")
            suppression = cls(**config["params"])
            suppression._check_params()
            dim = int(config["n_features_in"])
            directions = np.asarray(arrays["directions"], dtype=np.float64)
            if directions.ndim != 2 or directions.shape[1] != dim:
                raise ValueError(f"directions have shape {directions.shape}, not (k, {dim})")
            if len(directions) > suppression.n_directions or not np.all(np.isfinite(directions)):
                raise ValueError("directions are more than n_directions, or not finite")
            if not np.allclose(directions @ directions.T, np.eye(len(directions)), atol=1e-6):
                raise ValueError("directions are not orthonormal")
            suppression.directions_ = directions
            suppression.held_out_accuracy_ = np.asarray(
                arrays["held_out_accuracy"], dtype=np.float64
            )
            suppression.n_features_in_ = dim
            suppression.n_samples_ = int(config["n_samples"])
            suppression.n_people_ = int(config["n_people"])
        except (KeyError, TypeError, ValueError) as error:
            raise FaceBoneError(f"attribute-suppression state is damaged ({error})") from None
        return suppression

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _checked(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0 or X.shape[1] == 0:
        raise FaceBoneError(f"embeddings must be a non-empty (N, D) array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise FaceBoneError("embeddings must be finite real numbers")
    return l2_normalize(X)


def _project(X: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Unit rows of `X` with the span of the orthonormal `directions` removed."""
    return l2_normalize(X - (X @ directions.T) @ directions)


def _add_direction(directions: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`directions` and the unit part of `w` orthogonal to them (the same when none is
    left)."""
    w = w - directions.T @ (directions @ w)
    norm = np.linalg.norm(w)
    return directions if norm < 1e-9 else np.vstack([directions, w / norm])


def _scaled(X: np.ndarray) -> np.ndarray:
    """Unit templates scaled by sqrt(D): components of about unit size, so that `C` means the
    same for every width; the scale leaves the direction a linear model learns unchanged."""
    return X * np.sqrt(X.shape[1])


def _fit_logistic(X: np.ndarray, y: np.ndarray, weights: np.ndarray, C: float):
    """Logistic regression on `_scaled` unit templates; balanced classes aim its 0.5 cut at
    balanced accuracy. Newton steps converge in a handful of iterations at this width (L-BFGS
    needs a hundred on nearly separable templates)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=C, class_weight="balanced", solver="newton-cholesky", max_iter=1000
    )
    return model.fit(_scaled(X), y, sample_weight=weights)


def _balanced_accuracy(y: np.ndarray, guesses: np.ndarray, weights: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, guesses, sample_weight=weights))


def _person_folds(person_ids: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """The fold of each row: people shuffled with `seed` and dealt in turn to `FOLDS` folds,
    within each value of their (majority) label, so every fold holds both values."""
    rng = np.random.default_rng(seed)
    n_people = int(person_ids.max()) + 1
    share = np.bincount(person_ids, weights=labels, minlength=n_people) / np.bincount(person_ids)
    person_fold = np.zeros(n_people, dtype=np.int64)
    for value in (False, True):
        chosen = rng.permutation(np.flatnonzero((share >= 0.5) == value))
        person_fold[chosen] = np.arange(len(chosen)) % FOLDS
    return person_fold[person_ids]
