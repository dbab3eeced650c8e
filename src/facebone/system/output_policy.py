"""Output hardening: what a client is allowed to see of a system's P(same).

Score-based attacks feed on the fine grain of the answer: model extraction fits a copy to the
scores, black-box inversion climbs their gradient, and membership attacks read confidence.
The decision alone is all a verification client needs, so a deployment can show less:

- `probability`: the system's answer as it is (about 50 bits a query);
- `coarse`: the middle of its `step`-wide band, with the decision threshold on a band edge so
  the decision never changes. With the default 0.1, ten levels (0.05, 0.15, ..., 0.95):
  at most log2(10) = 3.3 bits a query, enough to tell a clear match from a borderline one
  and too coarse for a search to follow small changes of a face;
- `decision`: 1.0 at or above the threshold, else 0.0 (one bit a query).

`OutputPolicy` works on arrays, so the service, the studies and an attack's query function
(`harden_queries`) apply the same rule.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError
from facebone.system.fr_system import THRESHOLD
from facebone.system.policies import check_choice

OUTPUT_POLICIES = ("probability", "coarse", "decision")
COARSE_STEP = 0.1


@dataclass(frozen=True)
class OutputPolicy:
    """`name` (one of `OUTPUT_POLICIES`), the `step` of `coarse` answers, the `threshold` of
    the decision; a step that does not put the threshold on a band edge is refused."""

    name: str = "probability"
    step: float = COARSE_STEP
    threshold: float = THRESHOLD

    def __post_init__(self) -> None:
        check_choice(self.name, OUTPUT_POLICIES, "output policy")
        if not 0 < self.threshold < 1:
            raise FaceBoneError(f"the threshold {self.threshold} must lie between 0 and 1")
        if not 0 < self.step <= 0.5:
            raise FaceBoneError(f"the coarse step {self.step} must be in (0, 0.5]")
        bands = self.threshold / self.step
        if not math.isclose(bands, round(bands), abs_tol=1e-9):
            raise FaceBoneError(
                f"the coarse step {self.step} does not put the threshold {self.threshold} on "
                "a band edge, so coarse answers could flip decisions"
            )

    def __call__(self, probabilities: np.ndarray | float) -> np.ndarray:
        """What a client sees for each P(same) in `probabilities` (same shape, float64)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.name == "probability":
            return p
        if self.name == "decision":
            return (p >= self.threshold).astype(np.float64)
        # Bands counted from the threshold, so a probability just under it never rounds up.
        band = np.floor((p - self.threshold) / self.step)
        lowest = -round(self.threshold / self.step)
        highest = math.ceil((1 - self.threshold) / self.step - 1e-9) - 1
        # Rounded so that a level reads 0.95, not 0.9500000000000001.
        return np.round(self.threshold + (np.clip(band, lowest, highest) + 0.5) * self.step, 12)


def harden_queries(
    query: Callable[[Sequence[Pair]], np.ndarray], policy: OutputPolicy
) -> Callable[[Sequence[Pair]], np.ndarray]:
    """An attack's query function (pairs in, P(same) out) that sees only what `policy` shows."""

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        return policy(query(pairs))

    return ask
