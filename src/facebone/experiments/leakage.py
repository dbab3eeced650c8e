"""Where the undefended nn predictor leaks: a map over training-set size and training length.

Each cell trains the undefended system (SFace + nn, no weight decay, as in the `leaking`
regime) on a seeded, balanced subset of target_train for a number of epochs, and attacks it
like the comparison does (shadows trained the same way on attacker subsets of twice the size).
Few epochs under-fit, many over-fit; small training sets are memorised sooner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

import facebone
from facebone.data.pairs import Pair
from facebone.embeddings.cache import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import UNDEFENDED, get_defense
from facebone.experiments.regimes import Regime
from facebone.experiments.runner import (
    EmbedderPool,
    check_attacks,
    check_protocol,
    check_shadows,
    evaluate_system,
    torch_threads,
)

log = logging.getLogger(__name__)

DEFAULT_SIZES: tuple[int | None, ...] = (100, 200, 400, None)  # None: every target_train pair
DEFAULT_EPOCHS = (5, 60, 300)
# The two attacks that find the most in the comparison, at a fraction of the cost of all six.
DEFAULT_ATTACKS = ("lira", "blackbox-gb")
WEIGHT_DECAY = 0.0
# With two attacks a cell is cheap (seconds), so the map affords more shadows than the
# comparison: a stronger LiRA and less noise.
DEFAULT_SHADOWS = 8


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


def leakage_map(
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
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
    `cells[size label][str(epochs)]` holding one run each (see `runner.evaluate_system`)."""
    check_protocol(protocol)
    attack_list = check_attacks(attacks)
    n_shadows = check_shadows(n_shadows)
    n_all = len(protocol["target_train"])
    # A size that covers target_train is "all"; two such sizes are one column.
    sizes = list(dict.fromkeys(None if s is None or s >= n_all else int(s) for s in sizes))
    epochs = list(dict.fromkeys(int(e) for e in epochs))
    defense = get_defense(UNDEFENDED)
    started = time.perf_counter()
    cells: dict[str, dict[str, dict]] = {}
    embedders = EmbedderPool(cache, progress)
    steps = [(s, e) for s in sizes for e in epochs]
    bar = tqdm(steps, desc="leakage map", unit="cell", disable=not progress)
    try:
        with torch_threads(threads):
            for size, n_epochs in bar:
                label = f"{size_label(size)} pairs x {n_epochs} epochs"
                bar.set_postfix_str(label)
                regime = Regime(
                    name=f"n{size_label(size)}-e{n_epochs}",
                    description=label,
                    n_train=size,
                    nn_params={"epochs": n_epochs, "weight_decay": weight_decay},
                )
                training = regime.training_pairs(protocol["target_train"], seed)
                run = evaluate_system(
                    defense.system_params(regime.nn_params, seed),
                    embedders,
                    root,
                    training,
                    protocol["target_test"],
                    regime.attacker_pairs(protocol["attacker"], len(training), seed),
                    attack_list,
                    n_shadows,
                    seed,
                    identity_test=regime.training_pairs(protocol["target_test"], seed),
                    on_attack=lambda name, label=label: bar.set_postfix_str(f"{label} {name}"),
                )
                run["size"] = size_label(size)
                run["epochs"] = n_epochs
                cells.setdefault(size_label(size), {})[str(n_epochs)] = run
                log.info(
                    "%s: accuracy %.3f (train %.3f); best AUC pair %.3f, identity %.3f; %.1f s",
                    label,
                    run["utility"]["accuracy"],
                    run["train_accuracy"],
                    run["best"]["pair"]["auc"],
                    run["best"]["identity"]["auc"],
                    run["timings"]["total_s"],
                )
    finally:
        bar.close()
        embedders.close()
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
