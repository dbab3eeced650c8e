"""A deployment in one file: the system a registered defense names, and how its service
answers. `facebone train --deploy FILE` trains that system and `facebone serve --deploy FILE`
serves it under the file's service settings (configs/deploy.toml is the recommended one):

    defense = "cosine-fusion-hardened"   # a defense of experiments/defenses.py
    [service]
    query_budget = 10000                 # answers per client (omit: unlimited)
    query_window = 86400                 # seconds until a client's count starts again

What clients see of an answer (`output`) is the defense's own, as the study measured it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebone.errors import FaceBoneError

SERVICE_KEYS = ("query_budget", "query_window")


@dataclass(frozen=True)
class Deployment:
    """A defense to train and the service settings to serve it with."""

    source: Path
    defense: Any  # experiments.defenses.Defense
    query_budget: int | None = None
    query_window: float | None = None

    @property
    def output(self) -> str:
        return self.defense.output

    def system_params(self, seed: int) -> dict[str, Any]:
        """`FRSystem(**...)` options of the deployed system."""
        return self.defense.system_params({}, seed)

    def check_model(self, system) -> None:
        """Refuse a trained system that is not this deployment's (any option but the seed)."""
        wanted = self.system_params(seed=0)
        held = system.get_params()
        differing = sorted(k for k, v in wanted.items() if k != "seed" and held.get(k) != v)
        if differing:
            raise FaceBoneError(
                f"the model was not trained as {self.source}'s defense "
                f"{self.defense.name!r} ({', '.join(differing)} differ); train it with --deploy"
            )


def load_deployment(path: str | Path) -> Deployment:
    """The deployment file at `path`, checked whole (one sentence naming the key if not)."""
    from facebone.experiments.defenses import get_defense

    source = Path(path)
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"cannot read deployment {source}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise FaceBoneError(f"{source}: bad TOML: {error}") from None
    unknown = sorted(set(table) - {"defense", "service"})
    if unknown:
        raise FaceBoneError(f"{source}: {unknown[0]}: unknown key (defense, service)")
    name = table.get("defense")
    if not isinstance(name, str):
        raise FaceBoneError(f'{source}: defense: name a defense, e.g. "cosine-fusion-hardened"')
    try:
        defense = get_defense(name)
    except FaceBoneError as error:
        raise FaceBoneError(f"{source}: defense: {error}") from None
    service = table.get("service", {})
    if not isinstance(service, dict):
        raise FaceBoneError(f"{source}: service: expected a table")
    unknown = sorted(set(service) - set(SERVICE_KEYS))
    if unknown:
        raise FaceBoneError(f"{source}: service.{unknown[0]}: unknown key")
    budget, window = service.get("query_budget"), service.get("query_window")
    if budget is not None and (
        not isinstance(budget, int) or isinstance(budget, bool) or budget < 1
    ):
        raise FaceBoneError(f"{source}: service.query_budget: a whole number >= 1, got {budget!r}")
    if window is not None and (
        isinstance(window, bool)
        or not isinstance(window, int | float)
        or not (window > 0 and math.isfinite(window))
    ):
        raise FaceBoneError(f"{source}: service.query_window: positive seconds, got {window!r}")
    if window is not None and budget is None:
        raise FaceBoneError(f"{source}: service.query_window needs service.query_budget")
    return Deployment(source, defense, budget, None if window is None else float(window))
