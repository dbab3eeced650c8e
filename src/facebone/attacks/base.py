"""The root of every attack, and what attacks of all four families share.

FaceBone's attacks form one tree under `Attack` (as ART's do), one subpackage per threat:
`membership/` (was this pair or person in training?), `inversion/` (a face back from a
template), `extraction/` (a copy of the verifier from its answers) and `attribute/` (a private
trait read from templates or answers). Every attack registers in the one registry
(`registry.py`) and names its `family`, so a study lists attacks of any family by name.

The system under attack is a black box that answers a same-person probability for each pair of
images (`QueryFn`); membership attacks train shadow systems through a `ShadowTrainer`,
`(pairs, seed) -> QueryFn` of a freshly trained system, that the caller provides.
"""

from __future__ import annotations

import inspect
from abc import ABC
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError

# The threats, in the order a report lists them.
FAMILIES = ("membership", "inversion", "extraction", "attribute")

QueryFn = Callable[[Sequence[Pair]], np.ndarray]
ShadowTrainer = Callable[[Sequence[Pair], int], QueryFn]

# Probabilities are clipped before the logit so a saturated sigmoid (p == 1.0 in float64)
# still gives a finite confidence.
PROBABILITY_CLIP = 1e-12


class AttackError(FaceBoneError, ValueError):
    """Bad input to an attack: wrong pairs, options, or answers from a query function."""


class AttackNotFittedError(AttackError):
    """`infer` was called before `fit`."""


def identity_of(image: str) -> str:
    """The person an image shows: its folder name (LFW `Name/Name_0001.jpg` -> `Name`)."""
    return image.replace("\\", "/").split("/", 1)[0]


def pair_identities(pair: Pair) -> set[str]:
    return {identity_of(pair.image1), identity_of(pair.image2)}


def pair_key(pair: Pair) -> frozenset[str]:
    """The two images of a pair, in either order (the same pair asked both ways is one pair)."""
    return frozenset((pair.image1, pair.image2))


def check_pair_list(pairs: Sequence[Pair], what: str) -> list[Pair]:
    """A non-empty list of `Pair`s with 0/1 labels, or an AttackError naming `what`."""
    if isinstance(pairs, str | bytes) or not isinstance(pairs, Sequence):
        raise AttackError(f"{what} must be a list of Pair(image1, image2, label).")
    pairs = list(pairs)
    if not pairs:
        raise AttackError(f"{what} is empty; give at least one pair.")
    for index, pair in enumerate(pairs):
        if not isinstance(pair, Pair):
            raise AttackError(f"{what}[{index}] is a {type(pair).__name__}, not a Pair.")
        if pair.label not in (0, 1):
            raise AttackError(f"{what}[{index}] has label {pair.label!r}; labels are 1 or 0.")
    return pairs


def query(fn: QueryFn, pairs: Sequence[Pair], who: str = "the target") -> np.ndarray:
    """Ask a query function for P(same) of `pairs` and check its answer, shape (N,), float64."""
    answer = np.asarray(fn(list(pairs)), dtype=np.float64)
    if answer.shape != (len(pairs),):
        raise AttackError(
            f"{who} answered shape {answer.shape} for {len(pairs)} pairs; "
            "a query function returns one probability per pair."
        )
    if not np.all(np.isfinite(answer)) or answer.min() < 0.0 or answer.max() > 1.0:
        raise AttackError(f"{who} answered values outside [0, 1]; it must return P(same).")
    return answer


def true_label_confidence(p_same: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability the system gives to each pair's true label, clipped away from 0 and 1."""
    p_true = np.where(labels == 1, p_same, 1.0 - p_same)
    return np.clip(p_true, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)


def logit_confidence(p_same: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's phi = log(p_y / (1 - p_y)) on the true label y."""
    p_true = true_label_confidence(p_same, labels)
    return np.log(p_true) - np.log1p(-p_true)


def check_positive_int(
    value: object, name: str, minimum: int = 1, maximum: int | None = None
) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise AttackError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise AttackError(f"{name} must be at most {maximum}, got {value!r}.")


class Attack(ABC):  # noqa: B024  (the root holds the shared contract; families add methods)
    """Root of every attack: its threat `family`, its registered `name`, and the
    scikit-learn contract's options (the constructor only stores them; `get_params` reads
    them back by the constructor's signature)."""

    family: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def get_params(self) -> dict[str, Any]:
        """The constructor's options as this attack holds them."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
