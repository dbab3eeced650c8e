"""Which backbone embeds each training pair, and which answers each query.

Training (`assign`):
- `round-robin`: the original prototype's: consecutive pairs cycle through a shuffled list
  of the backbones;
- `random`: each pair through a backbone drawn at random;
- `all`: each pair through every backbone (K copies of the training set).
Inference (`infer`):
- `random`: each query answered through a backbone drawn per query (seeded);
- `fixed`: always the same backbone;
- `ensemble`: the mean probability over all backbones.
"""

import numpy as np

from facebone.errors import FaceBoneError

MITIGATIONS = ("none", "multi", "split-distill")
ASSIGN_POLICIES = ("round-robin", "random", "all")
INFER_POLICIES = ("random", "fixed", "ensemble")


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise FaceBoneError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def assign_backbones(
    n_pairs: int, n_backbones: int, policy: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(pair index, backbone index) of every training row under `policy`."""
    check_choice(policy, ASSIGN_POLICIES, "assignment policy")
    pairs = np.arange(n_pairs)
    if policy == "round-robin":
        return pairs, rng.permutation(n_backbones)[pairs % n_backbones]
    if policy == "random":
        return pairs, rng.integers(n_backbones, size=n_pairs)
    return np.repeat(pairs, n_backbones), np.tile(np.arange(n_backbones), n_pairs)
