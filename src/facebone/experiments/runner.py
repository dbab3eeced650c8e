"""What the study engine (`facebone.studies`) and the experiments share: the protocol check,
the JSON descriptions of defenses and regimes a study records, and atomic JSON results.
Comparisons themselves run as studies (`configs/compare.toml`, `studies.engine.run_study`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from facebone.atomic import write_text_atomic
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError
from facebone.experiments.regimes import Regime


def check_protocol(protocol: Mapping[str, Sequence[Pair]]) -> None:
    missing = [r for r in ("target_train", "target_test", "attacker") if not protocol.get(r)]
    if missing:
        raise FaceBoneError(f"the pair protocol has no {', '.join(missing)} pairs")


def describe_defense(defense) -> dict[str, Any]:
    return {
        "description": defense.description,
        "system": defense.system_params({}, seed=0) | {"seed": None},
        "output": defense.output,
    }


def describe_regime(regime: Regime) -> dict[str, Any]:
    return {
        "description": regime.description,
        "n_train": regime.n_train,
        "nn_params": dict(regime.nn_params),
    }


def save_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write results as JSON, atomically."""
    path = Path(path)
    write_text_atomic(path, json.dumps(results, indent=1, sort_keys=False) + "\n")
    return path
