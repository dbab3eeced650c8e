"""The parameter attack: membership read from a calibrated predictor's fitted numbers.

A distance predictor (`predictors/distance.py`) answers `sigmoid(slope_k * s_k + intercept_k)`
for the score `s_k` (say the cosine) of a pair through backbone k, and a fused system
(`cosine-fusion`) answers the mean of that over its backbones. The fit is deterministic: a
handful of numbers, all fitted on the members' pairs. Three steps turn them into a membership
test, none of them needing more than the black box and the public backbones:

1. Extraction. The attacker embeds its own query pairs with the public backbones, so it knows
   each `s_k`, and solves the target's answers for the numbers: in closed form for one answering
   backbone (`logit(p) = slope * s + intercept`, least squares weighted by `p(1-p)`), by
   nonlinear least squares (Levenberg-Marquardt, started from the attacker's own calibration)
   for a mean over backbones. `extraction_residual_` is the largest answer the recovered numbers
   miss (about 1e-16 when they are exact).
2. Exact shadows. A calibration fit costs microseconds, so thousands of shadows are fitted
   with the predictor's own code (`fit_logistic_1d`) on the attacker's cached scores instead
   of training `FRSystem`s (the test suite checks that both give the same numbers). Like online
   LiRA (`lira_online.py`, whose draws they share), each shadow trains on a label-balanced draw
   of the target's training-set size from the candidates and the attacker's pairs, so every
   candidate is IN for some shadows and OUT for the rest.
3. Score. The numbers theta of a system are Gaussian over training sets (covariance Sigma, from
   the shadows). A candidate c moves them by its influence delta_c, measured without the noise
   of comparing two small groups of shadows: each of the first `n_counterfactual` shadows is
   refitted with c's membership flipped (c swapped in for a random pair of its label, or
   swapped out for a random pool pair of its label), and delta_c is the mean IN - OUT
   difference of these pairs of worlds. With mean_out = mean(theta) - pi_c delta_c (pi_c: the
   share of shadows holding c) the score is LiRA's likelihood ratio,
       log N(theta_target; mean_out + delta_c, Sigma) - log N(theta_target; mean_out, Sigma).

A member-free calibration (`FRSystem(calibration="public")`) fits the same numbers whatever
the members are: every shadow then equals the target, every delta is 0 and every score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from scipy.optimize import least_squares

from facebone.attacks.base import AttackError, QueryFn, ShadowTrainer, check_positive_int, query
from facebone.attacks.membership.base import (
    ShadowAttack,
    balanced_sample,
    best_threshold,
    distinct,
)
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels
from facebone.predictors.base import sigmoid
from facebone.predictors.distance import fit_logistic_1d

# Shadows and counterfactual refits are fitted this many training sets at a time (memory).
FIT_CHUNK = 4096
# At most this many shadows: 100,000 fits of a few hundred pairs take about a minute.
MAX_SHADOWS = 100_000
# Shadows that play the target in turn when the attack picks its threshold.
THRESHOLD_PSEUDO_TARGETS = 16
# Answers this close to 0 or 1 carry no usable logit in the closed-form extraction.
SATURATED = 1e-12


@dataclass(frozen=True)
class CalibrationDesign:
    """How a calibrated distance system fits and fuses its numbers, as an informed attacker
    knows it: `n_backbones` backbones each calibrated on every training pair (ridge `l2` on the
    standardised slope), each answer the mean over the `answering` backbones, and the
    `public_pairs` a member-free calibration fits on (None: it fits on the members)."""

    n_backbones: int
    answering: tuple[int, ...]
    l2: float
    public_pairs: tuple[Pair, ...] | None = None


class PairScores(Protocol):
    """The target predictor's score of each pair through each backbone, `(N, n_backbones)`,
    computed by the attacker with the public backbones (`system_target.system_pair_scores`);
    `design()` says how the system calibrates them, or raises an AttackError for a system that
    is not a calibrated distance predictor."""

    def __call__(self, pairs: Sequence[Pair]) -> np.ndarray: ...

    def design(self) -> CalibrationDesign: ...


def fit_calibrations(
    scores: np.ndarray, labels: np.ndarray, rows: np.ndarray, l2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts `(B, K)` of B systems, system b calibrated on the pairs
    `rows[b]` (indices into `scores` `(N, K)` and `labels` `(N,)`) with the predictor's own
    fit, backbone by backbone: exactly what `FRSystem` fits with `all` assignment."""
    rows = np.atleast_2d(rows)
    slopes = np.empty((rows.shape[0], scores.shape[1]))
    intercepts = np.empty_like(slopes)
    for start in range(0, rows.shape[0], FIT_CHUNK):
        chunk = rows[start : start + FIT_CHUNK]
        for k in range(scores.shape[1]):
            slope, intercept = fit_logistic_1d(scores[chunk, k], labels[chunk], l2)
            slopes[start : start + FIT_CHUNK, k] = slope
            intercepts[start : start + FIT_CHUNK, k] = intercept
    return slopes, intercepts


def calibrated_answers(
    scores: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray
) -> np.ndarray:
    """P(same) of pairs with scores `(N, A)` through A answering backbones: the mean of their
    calibrated probabilities, computed as `FRSystem` does."""
    return np.mean(
        [sigmoid(slopes[k] * scores[:, k] + intercepts[k]) for k in range(len(slopes))], axis=0
    )


@dataclass(frozen=True)
class Extraction:
    """Calibration numbers recovered from answers, and the largest answer they miss."""

    slopes: np.ndarray
    intercepts: np.ndarray
    residual: float


def extract_calibration(
    scores: np.ndarray, answers: np.ndarray, start: tuple[np.ndarray, np.ndarray]
) -> Extraction:
    """Solve `answers` (N,) = `calibrated_answers(scores, slopes, intercepts)` for the numbers
    of the A answering backbones, `scores` `(N, A)`: closed form for A = 1, Levenberg-Marquardt
    from `start` (slopes, intercepts) otherwise."""
    n, a = scores.shape
    if n < 2 * a:
        raise AttackError(f"extracting {2 * a} calibration numbers needs at least {2 * a} answers.")
    if a == 1:
        usable = (answers > SATURATED) & (answers < 1.0 - SATURATED)
        if np.unique(scores[usable, 0]).size < 2:
            raise AttackError(
                "the target's answers are saturated (0 or 1) for nearly every query pair; its "
                "calibration cannot be read from them."
            )
        p = answers[usable]
        weight = p * (1.0 - p)  # a logit's error grows as 1 / (p (1 - p))
        design = np.stack([scores[usable, 0], np.ones(int(usable.sum()))], axis=1)
        logit = np.log(p) - np.log1p(-p)
        (slope, intercept), *_ = np.linalg.lstsq(design * weight[:, None], logit * weight)
        slopes, intercepts = np.array([slope]), np.array([intercept])
    else:

        def residual(x: np.ndarray) -> np.ndarray:
            return calibrated_answers(scores, x[:a], x[a:]) - answers

        def jacobian(x: np.ndarray) -> np.ndarray:
            p = sigmoid(x[:a] * scores + x[a:])
            slope_part = p * (1.0 - p) / a
            return np.concatenate([slope_part * scores, slope_part], axis=1)

        x0 = np.concatenate(start)
        fit = least_squares(
            residual,
            x0,
            jac=jacobian,
            method="lm",
            x_scale="jac",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        slopes, intercepts = fit.x[:a], fit.x[a:]
    missed = np.abs(calibrated_answers(scores, slopes, intercepts) - answers)
    return Extraction(slopes, intercepts, float(missed.max()))


def likelihood_ratio(
    theta: np.ndarray,
    mean: np.ndarray,
    inclusion: np.ndarray,
    delta: np.ndarray,
    precision: np.ndarray,
) -> np.ndarray:
    """log N(theta; mean_out + delta, Sigma) - log N(theta; mean_out, Sigma) per candidate, with
    mean_out = mean - inclusion * delta; `delta` `(C, P)`, `precision` the (pseudo-)inverse of
    Sigma `(P, P)`, `mean` and `theta` `(P,)`."""
    out = mean - inclusion[:, None] * delta
    pulled = delta @ precision
    return np.einsum("cp,cp->c", pulled, theta - out) - 0.5 * np.einsum("cp,cp->c", pulled, delta)


@register_attack("parameter")
class ParameterAttack(ShadowAttack):
    """The parameter attack on calibrated distance predictors (module docstring).

    Parameters
    ----------
    n_shadows : exact shadow calibrations (thousands are cheap; at most `MAX_SHADOWS`).
    n_counterfactual : of them, how many are refitted once per candidate with its membership
        flipped, to measure its influence (the first min(n_counterfactual, n_shadows)).
    seed : seeds the shadows' draws (the same as `lira-online`'s for the same seed).
    shadow_size : pairs each shadow trains on (the target's training-set size; None: half of
        the candidates and attacker pairs together).
    pair_scores : the target's per-backbone pair scores and calibration design, which the
        attacker computes with the public backbones (`system_target.system_pair_scores`);
        `evaluate_membership_attacks` sets it from its own `pair_scores`.

    `fit` reads the design (a system that is not a calibrated distance predictor is refused
    there) and the attacker's own calibration; `infer` extracts the target's numbers
    (`calibration_`: slope and intercept of each answering backbone, `(A, 2)`;
    `extraction_residual_`), fits the shadows and scores the candidates.
    `threshold_` is chosen on shadows only: each of a few plays the target, scored with
    statistics from the others.
    """

    name = "parameter"
    min_shadows = 2
    max_shadows = MAX_SHADOWS
    needs_pair_scores: ClassVar[bool] = True

    def __init__(
        self,
        n_shadows: int = 2048,
        n_counterfactual: int = 64,
        seed: int = 0,
        shadow_size: int | None = None,
        pair_scores: PairScores | None = None,
    ) -> None:
        self.n_shadows = n_shadows
        self.n_counterfactual = n_counterfactual
        self.seed = seed
        self.shadow_size = shadow_size
        self.pair_scores = pair_scores

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self.n_counterfactual, "n_counterfactual", minimum=2)
        if self.pair_scores is None:
            raise AttackError(
                "the parameter attack needs the target's per-backbone pair scores, which an "
                "attacker computes with the public backbones: give pair_scores "
                "(attacks.system_target.system_pair_scores)."
            )

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        design = self.pair_scores.design()
        answering = list(design.answering)
        scores = np.asarray(self.pair_scores(pairs), dtype=np.float64)
        if scores.shape != (len(pairs), design.n_backbones):
            raise AttackError(
                f"pair_scores gave shape {scores.shape} for {len(pairs)} pairs and "
                f"{design.n_backbones} backbones."
            )
        self.design_ = design
        own = self._numbers(
            *fit_calibrations(scores, pair_labels(pairs), np.arange(len(pairs)), design.l2)
        )[0]
        if design.public_pairs is not None:
            public = list(design.public_pairs)
            self.public_theta_ = self._numbers(
                *fit_calibrations(
                    np.asarray(self.pair_scores(public), dtype=np.float64),
                    pair_labels(public),
                    np.arange(len(public)),
                    design.l2,
                )
            )[0]
        self.attacker_pairs_ = pairs
        self.attacker_scores_ = scores[:, answering]
        self.own_calibration_ = (own[: len(answering)], own[len(answering) :])
        self.threshold_ = 0.0  # replaced in infer, once shadows exist

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        extraction = extract_calibration(
            self.attacker_scores_, query(target, self.attacker_pairs_), self.own_calibration_
        )
        self.calibration_ = np.stack([extraction.slopes, extraction.intercepts], axis=1)
        self.extraction_residual_ = extraction.residual
        theta_target = np.concatenate([extraction.slopes, extraction.intercepts])

        pool = distinct(pairs + self.attacker_pairs_)
        index = {pair: i for i, pair in enumerate(pool)}
        labels = pair_labels(pool)
        scores = np.asarray(self.pair_scores(pool), dtype=np.float64)
        candidates = np.array([index[p] for p in pairs])
        size = self.shadow_size or len(pool) // 2
        rows = np.array(
            [
                [
                    index[p]
                    for p in balanced_sample(pool, size, np.random.default_rng([self.seed, k, 2]))
                ]
                for k in range(self.n_shadows)
            ]
        )
        theta = self._calibrations(scores, labels, rows)
        holds = np.zeros((self.n_shadows, len(pool)), dtype=bool)
        holds[np.arange(self.n_shadows)[:, None], rows] = True
        inside = holds[:, candidates]
        n_flipped = min(self.n_counterfactual, self.n_shadows)
        rng = np.random.default_rng([self.seed, 3])
        shifts = np.stack(
            [
                self._influence(scores, labels, rows[j], theta[j], candidates, inside[j], rng)
                for j in range(n_flipped)
            ]
        )
        precision = np.linalg.pinv(np.atleast_2d(np.cov(theta, rowvar=False)), hermitian=True)
        self.threshold_ = self._threshold_from_shadows(theta, inside, shifts, precision)
        return likelihood_ratio(
            theta_target, theta.mean(axis=0), inside.mean(axis=0), shifts.mean(axis=0), precision
        )

    def _calibrations(self, scores: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The numbers theta `(B, 2A)` (answering slopes, then intercepts) of systems trained
        on `rows` of the pool; a member-free calibration fits its public pairs whatever the rows."""
        if self.design_.public_pairs is not None:
            return np.tile(self.public_theta_, (len(rows), 1))
        return self._numbers(*fit_calibrations(scores, labels, rows, self.design_.l2))

    def _numbers(self, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
        """theta `(B, 2A)` from slopes and intercepts `(B, K)`: what the answers reveal, the
        answering backbones' slopes, then their intercepts."""
        answering = list(self.design_.answering)
        return np.concatenate([slopes[:, answering], intercepts[:, answering]], axis=1)

    def _influence(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        rows: np.ndarray,
        theta: np.ndarray,
        candidates: np.ndarray,
        inside: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """IN - OUT numbers `(C, 2A)` of one shadow and its counterfactuals: the shadow refitted
        once per candidate with the candidate's membership flipped (swapped in for a random pair
        of its label, or out for a random pool pair of its label that the shadow lacks)."""
        flipped = np.tile(rows, (len(candidates), 1))
        for label in (0, 1):
            adding = np.flatnonzero(~inside & (labels[candidates] == label))
            places = np.flatnonzero(labels[rows] == label)
            flipped[adding, rng.choice(places, adding.size)] = candidates[adding]
            removing = np.flatnonzero(inside & (labels[candidates] == label))
            spare = np.setdiff1d(np.flatnonzero(labels == label), rows)
            if removing.size and spare.size:
                first = np.argmax(rows[None, :] == candidates[removing, None], axis=1)
                flipped[removing, first] = rng.choice(spare, removing.size)
        other = self._calibrations(scores, labels, flipped)
        return np.where(inside[:, None], theta - other, other - theta)

    def _threshold_from_shadows(
        self, theta: np.ndarray, inside: np.ndarray, shifts: np.ndarray, precision: np.ndarray
    ) -> float:
        """The balanced-accuracy cut on shadows playing the target, each scored with the
        means, shares and influences of the others."""
        n, m = len(theta), len(shifts)
        if n < 2 or m < 2:
            return 0.0
        scores, truth = [], []
        for k in range(min(THRESHOLD_PSEUDO_TARGETS, m)):
            mean = (theta.sum(axis=0) - theta[k]) / (n - 1)
            share = (inside.sum(axis=0) - inside[k]) / (n - 1)
            delta = (shifts.sum(axis=0) - shifts[k]) / (m - 1)
            scores.append(likelihood_ratio(theta[k], mean, share, delta, precision))
            truth.append(inside[k])
        truth_all = np.concatenate(truth)
        if truth_all.all() or not truth_all.any():
            return 0.0
        return best_threshold(truth_all, np.concatenate(scores))
