"""The study options of each threat family, declared once with their constraints: the study
config checks `[[attacks]]` tables against them and the family modules read their values.

Settings: the threat model an attack assumes. "stolen-store": the thief has the stored
templates (and the model folder), not the keys; "service": the attacker only queries the
verification service; an extraction's settings are its query budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option: its type, default and smallest allowed value (for numbers), and why."""

    kind: type
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    doc: str = ""


FAMILY_OPTIONS: dict[str, dict[str, Option]] = {
    "inversion": {
        "budget": Option(
            int, None, 1, 10_000, "decoder epochs, optimise steps or blackbox queries per target"
        ),
        "targets": Option(
            int, 256, 8, 5_000, "stored templates inverted (first image of each enrolled person)"
        ),
    },
    "attribute": {
        "targets": Option(int, 256, 8, 5_000, "enrolled images whose attribute is guessed"),
        "references": Option(
            int, 64, 2, 2_000, "the attacker's labelled photos each probe is matched with"
        ),
    },
    "extraction": {
        "budgets": Option(list, [1000], 2, 100_000, "queries the attacker may send"),
    },
}

# The setting each attack assumes (extraction: one per budget).
ATTACK_SETTINGS = {
    "decoder": "stolen-store",
    "optimise": "stolen-store",
    "blackbox": "service",
    "attribute-template": "stolen-store",
    "attribute-blackbox": "service",
}


def option_values(family: str, given: dict[str, Any]) -> dict[str, Any]:
    """The family's options: `given` over the declared defaults."""
    return {
        name: given.get(name, option.default) for name, option in FAMILY_OPTIONS[family].items()
    }
