"""Typed result records of a study: what one trained system scored, and what one attack at one
level scored against it.

The store (`store.py`) keeps one `UtilityRecord` per system x regime x seed, one
`AttackRecord` per membership attack x level (system x regime x seed), and one `ThreatRecord`
per inversion, extraction or attribute attack x setting; reports and exports read them back
as these records, never as nested string-keyed dicts. Every record converts to and from plain
JSON (`to_dict` / `from_dict`) so the store and the exports share one shape.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

# Packages whose versions a record names: the ones whose changes can move a figure.
VERSIONED_PACKAGES = (
    "facebone",
    "numpy",
    "scikit-learn",
    "torch",
    "opacus",
    "onnxruntime",
    "opencv-contrib-python",
    "dlib-bin",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of `VERSIONED_PACKAGES` ("absent" for one not installed)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass(frozen=True, order=True)
class SystemKey:
    """One trained target: a system (a defense or a system table) in a regime on a split seed."""

    system: str
    regime: str
    seed: int

    def label(self) -> str:
        return f"{self.regime}/{self.system}/seed{self.seed}"


@dataclass(frozen=True, order=True)
class CellKey:
    """One attack result: an attack at a level ("pair" or "identity") against one target."""

    system: str
    regime: str
    attack: str
    level: str
    seed: int

    @property
    def system_key(self) -> SystemKey:
        return SystemKey(self.system, self.regime, self.seed)


@dataclass(frozen=True)
class ChanceBand:
    """What a chance attack reaches with probability 0.95 on the same numbers of members and
    non-members (`experiments.statistics.chance_band`): figures inside it show no leak."""

    auc: float
    tpr_at_fpr: Mapping[str, float]


@dataclass(frozen=True)
class UtilityRecord:
    """A trained target's utility on target_test (its non-members), with its DP guarantee."""

    key: SystemKey
    params: Mapping[str, Any]  # the `FRSystem(**params)` options it was trained with
    accuracy: float
    auc: float
    tar_at_far: Mapping[str, float]
    train_accuracy: float
    n_train: int
    n_test: int
    n_attacker: int
    epsilon: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None
    train_s: float = 0.0
    total_s: float = 0.0
    config_hash: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def generalisation_gap(self) -> float:
        return self.train_accuracy - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UtilityRecord:
        return cls(**{**data, "key": SystemKey(**data["key"])})


@dataclass(frozen=True)
class AttackRecord:
    """One membership attack at one level against one target: trained on shadows of the
    attacker's pairs only, evaluated on the target's members and non-members."""

    key: CellKey
    auc: float
    advantage: float
    balanced_accuracy: float
    tpr_at_fpr: Mapping[str, float]  # {"0.01": ..., "0.001": ...}
    roc_fpr: tuple[float, ...]
    roc_tpr: tuple[float, ...]
    shadows: int
    queries: int
    n_members: int
    n_nonmembers: int
    chance: ChanceBand
    threshold: float | None = None
    seconds: float = 0.0  # fit + infer; shadows shared with an earlier attack count there
    config_hash: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def tpr_at_1pct_fpr(self) -> float:
        return self.tpr_at_fpr["0.01"]

    @property
    def tpr_at_01pct_fpr(self) -> float:
        return self.tpr_at_fpr["0.001"]

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttackRecord:
        return cls(
            **{
                **data,
                "key": CellKey(**data["key"]),
                "chance": ChanceBand(**data["chance"]),
                "roc_fpr": tuple(data["roc_fpr"]),
                "roc_tpr": tuple(data["roc_tpr"]),
            }
        )


@dataclass(frozen=True, order=True)
class ThreatKey:
    """One attack of the inversion, extraction or attribute family against one target, in one
    setting: the threat model it assumes ("stolen-store", "service") or its query budget."""

    system: str
    regime: str
    family: str
    attack: str
    setting: str
    seed: int

    @property
    def system_key(self) -> SystemKey:
        return SystemKey(self.system, self.regime, self.seed)


@dataclass(frozen=True)
class ThreatRecord:
    """What one attack reached against one target: its headline figure `value` (higher means
    more leaked: SAR, balanced accuracy, fidelity), named by `metric`, beside `chance` (what
    it reaches with nothing to learn: the upper end of the chance band where the figure is an
    estimate) and `goal` (the most a defended deployment may reach; None where the figure is
    reported only), with all its figures in `metrics`."""

    key: ThreatKey
    metric: str
    value: float
    chance: float
    goal: float | None
    metrics: Mapping[str, Any]
    n_targets: int
    seconds: float = 0.0
    config_hash: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def meets_goal(self) -> bool | None:
        return None if self.goal is None else self.value <= self.goal

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThreatRecord:
        return cls(**{**data, "key": ThreatKey(**data["key"])})


@dataclass(frozen=True)
class StudyRecords:
    """Everything a finished (or partial) study holds: its description (`study.json`) and
    its records, sorted by key."""

    study: Mapping[str, Any]
    utility: tuple[UtilityRecord, ...]
    attacks: tuple[AttackRecord, ...]
    threats: tuple[ThreatRecord, ...] = ()

    def utility_of(self, key: SystemKey) -> UtilityRecord | None:
        return next((u for u in self.utility if u.key == key), None)


def _to_dict(record: Any) -> dict[str, Any]:
    """JSON-ready: nested dataclasses and mappings as dicts, tuples as lists."""
    data = dataclasses.asdict(record)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
