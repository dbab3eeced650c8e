"""Where the undefended nn predictor leaks: a map over training-set size and training length.

Each cell trains the undefended system (SFace + nn, no weight decay, as in the `leaking`
regime) on a seeded, balanced subset of target_train for a number of epochs, and attacks it
like the comparison does (shadows trained the same way on attacker subsets of twice the size).
Few epochs under-fit, many over-fit; small training sets are memorised sooner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import facebone
from facebone.attacks import check_attack_names
from facebone.data.pairs import Pair
from facebone.embeddings.cache import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import UNDEFENDED, get_defense
from facebone.experiments.evaluation import Configuration, evaluate_configurations
from facebone.experiments.regimes import Regime
from facebone.experiments.runner import check_protocol, check_shadows

log = logging.getLogger(__name__)

DEFAULT_SIZES: tuple[int | None, ...] = (100, 200, 400, None)  # None: every target_train pair
DEFAULT_EPOCHS = (5, 60, 300)
# The strongest attack and its offline form, at a fraction of the cost of all seven.
DEFAULT_ATTACKS = ("lira-online", "lira")
WEIGHT_DECAY = 0.0
# None: each attack's own shadow count (64 for online LiRA, 16 for offline).
DEFAULT_SHADOWS = None


def size_label(size: int | None) -> str:
    return "all" if size is None else str(size)


def parse_sizes(text: str) -> list[int | None]:
    """`100,200,all` -> [100, 200, None]."""
    sizes: list[int | None] = []
    for item in text.split(","):
        item = item.strip().lower()
        if item == "all":
            sizes.append(None)
            continue
        try:
            value = int(item)
        except ValueError:
            raise FaceBoneError(
                f"training-set size {item!r} is not a whole number or 'all'"
            ) from None
        if value < 10:
            raise FaceBoneError(f"training-set size {value} is too small; use 10 or more pairs")
        sizes.append(value)
    if not sizes:
        raise FaceBoneError("give at least one training-set size")
    return list(dict.fromkeys(sizes))


def parse_epochs(text: str) -> list[int]:
    try:
        epochs = [int(item) for item in text.split(",")]
    except ValueError:
        raise FaceBoneError(f"epochs {text!r}: give whole numbers like 5,60,300") from None
    if not epochs or min(epochs) < 1:
        raise FaceBoneError(f"epochs {text!r}: each must be at least 1")
    return list(dict.fromkeys(epochs))


def cell_regime(size: int | None, epochs: int, weight_decay: float) -> Regime:
    """The training recipe of one cell: `size` pairs (None: all) for `epochs` epochs."""
    return Regime(
        name=f"n{size_label(size)}-e{epochs}",
        description=f"{size_label(size)} pairs x {epochs} epochs",
        n_train=size,
        nn_params={"epochs": epochs, "weight_decay": weight_decay},
    )


def leakage_map(
    root: str | Path,
    protocol_for: Callable[[int], Mapping[str, Sequence[Pair]]],
    sizes: Sequence[int | None] = DEFAULT_SIZES,
    epochs: Sequence[int] = DEFAULT_EPOCHS,
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    n_shadows: int | None = DEFAULT_SHADOWS,
    seed: int = 0,
    weight_decay: float = WEIGHT_DECAY,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """Attack the undefended system at every (size, epochs); JSON-serialisable results with
    `cells[size label][str(epochs)]` holding one run each (see `evaluation.evaluate_system`), on
    the splits of `protocol_for(seed)`."""
    protocol = protocol_for(seed)
    check_protocol(protocol)
    attack_list = check_attack_names(attacks)
    n_shadows = check_shadows(n_shadows)
    n_all = len(protocol["target_train"])
    # A size that covers target_train is "all"; two such sizes are one column.
    sizes = list(dict.fromkeys(None if s is None or s >= n_all else int(s) for s in sizes))
    epochs = list(dict.fromkeys(int(e) for e in epochs))
    defense = get_defense(UNDEFENDED)
    started = time.perf_counter()
    steps = [(s, e) for s in sizes for e in epochs]
    configurations = [
        Configuration(regime.description, regime, defense, seed)
        for regime in (cell_regime(s, e, weight_decay) for s, e in steps)
    ]
    evaluated = evaluate_configurations(
        root,
        lambda _: protocol,
        configurations,
        attack_list,
        n_shadows,
        cache=cache,
        progress=progress,
        threads=threads,
        desc="leakage map",
        unit="cell",
    )
    cells: dict[str, dict[str, dict]] = {}
    for (size, n_epochs), run in zip(steps, evaluated, strict=True):
        run["size"] = size_label(size)
        run["epochs"] = n_epochs
        cells.setdefault(size_label(size), {})[str(n_epochs)] = run
    return {
        "experiment": "leakage",
        "facebone_version": facebone.__version__,
        "data": str(root),
        "seed": seed,
        "protocol": {role: len(pairs) for role, pairs in protocol.items()},
        "defense": UNDEFENDED,
        "weight_decay": weight_decay,
        "attacks": attack_list,
        "n_shadows": n_shadows,
        "torch_threads": threads,
        "sizes": [size_label(s) for s in sizes],
        "epochs": epochs,
        "cells": cells,
        "timings": {"total_s": time.perf_counter() - started},
    }
