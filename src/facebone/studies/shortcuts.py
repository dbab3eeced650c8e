"""`facebone experiment compare` and `leakage`: the shipped study configurations
(`configs/compare.toml`, `quick.toml`, `leakage.toml`) with options given on the command line,
run by the study engine, followed by the canary audit of the comparison and the report, all
in the study's output folder (results.sqlite, canaries.json, report.html, report.md)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.embeddings.cache import EmbeddingCache
    from facebone.reports.document import Section
    from facebone.studies.config import StudyConfig

# Where a source checkout keeps the shipped configurations (src/facebone/studies/ -> repo).
CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# The canary audit's results in a study folder; `reports.sources` reads them from there.
CANARIES_FILE = "canaries.json"
# Training-set sizes (None: every target_train pair) and lengths of the leakage map, as
# configs/leakage.toml lists them (a test checks the two agree).
LEAKAGE_SIZES: tuple[int | None, ...] = (100, 200, 400, None)
LEAKAGE_EPOCHS = (5, 60, 300)


def shipped_config(name: str) -> Path:
    """The shipped study configuration `name` (`configs/NAME.toml`)."""
    path = CONFIGS / f"{name}.toml"
    if not path.is_file():
        raise FaceBoneError(
            f"the shipped study configuration {path} is missing (it comes with a source "
            "checkout); run `facebone study run` with a configuration file instead"
        )
    return path


def attack_tables(
    config: Path, names: Sequence[str] | None, shadows: int | None
) -> list[dict[str, Any]]:
    """The `[[attacks]]` tables of `config` for `names` (None: the file's own), each keeping
    the file's options for it, with `shadows` (if given) for every one."""
    held = {
        table["name"]: table
        for table in tomllib.loads(config.read_text(encoding="utf-8")).get("attacks", [])
    }
    chosen = list(held) if names is None else list(names)
    extra = {} if shadows is None else {"shadows": shadows}
    return [{**held.get(name, {"name": name}), **extra} for name in chosen]


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
    return list(dict.fromkeys(sizes))


def parse_epochs(text: str) -> list[int]:
    try:
        epochs = [int(item) for item in text.split(",")]
    except ValueError:
        raise FaceBoneError(f"epochs {text!r}: give whole numbers like 5,60,300") from None
    if min(epochs) < 1:
        raise FaceBoneError(f"epochs {text!r}: each must be at least 1")
    return list(dict.fromkeys(epochs))


def leakage_regimes(sizes: Sequence[int | None], epochs: Sequence[int]) -> list[dict[str, Any]]:
    """The `[[regimes]]` tables of the leakage map: the undefended nn trained on `size`
    pairs for `epochs` epochs without weight decay, per cell."""
    return [
        {
            "name": f"n{size_label(size)}-e{n_epochs}",
            "description": f"{size_label(size)} pairs x {n_epochs} epochs",
            **({} if size is None else {"n_train": size}),
            "epochs": n_epochs,
            "weight_decay": 0.0,
        }
        for size in sizes
        for n_epochs in epochs
    ]


def leakage_map_sections(config: StudyConfig, results: dict[str, Any]) -> Sequence[Section]:
    """The leakage map's report sections (`reports.experiments.leakage_sections`), each
    regime of `config` one cell."""
    from facebone.reports.experiments import leakage_sections

    cells = {
        name: (size_label(regime.n_train), int(regime.nn_params.get("epochs", 0)))
        for name, regime in config.regimes.items()
    }
    return leakage_sections(results, cells)


@dataclass(frozen=True)
class CanaryPlan:
    """The canary audit after a comparison: `n_canaries` planted, `n_targets` systems per
    system and regime, on the regime's first split seed."""

    n_canaries: int
    n_targets: int


def audit_canaries(
    config: StudyConfig,
    plan: CanaryPlan,
    cache: EmbeddingCache | None,
    progress: bool,
    workers: int,
) -> Path:
    """Audit every system of `config` in each of its regimes with planted
    canaries, and write the figures into its output folder (`CANARIES_FILE`)."""
    from facebone.atomic import write_text_atomic
    from facebone.experiments.canaries import audit_defenses
    from facebone.experiments.execution import EmbedderPool
    from facebone.studies.engine import protocols

    protocol_of = protocols(config)
    configurations = [
        (regime, system.defense, config.splits.seeds_of(regime.name)[:1])
        for regime in config.regimes.values()
        for system in config.systems
        if regime.name in system.regimes
    ]
    embedders = EmbedderPool(cache, progress)
    try:
        canaries = audit_defenses(
            str(config.data),
            protocol_of.__getitem__,
            configurations,
            embedders,
            plan.n_canaries,
            plan.n_targets,
            progress,
            workers,
        )
    finally:
        embedders.close()
    path = config.output / CANARIES_FILE
    document = {
        "config_hash": config.config_hash(),
        "n_canaries": plan.n_canaries,
        "n_targets": plan.n_targets,
        "canaries": canaries,
    }
    write_text_atomic(path, json.dumps(document, indent=1) + "\n")
    return path


def read_canaries(folder: Path) -> Mapping[str, Any] | None:
    """The canary figures a study folder holds (`audit_canaries`), if any, checked to have
    the shape the report reads: `canaries[regime][system]` with every figure a number."""
    path = folder / CANARIES_FILE
    if not path.is_file():
        return None
    try:
        canaries = parse_json(path.read_text(encoding="utf-8"))["canaries"]
        for by_system in canaries.values():
            for entry in by_system.values():
                figures = [
                    entry["auc"],
                    *(entry["tpr_at_fpr"][fpr] for fpr in ("0.01", "0.001")),
                    *(entry["by_kind"][kind]["0.01"] for kind in ("mislabeled", "atypical")),
                ]
                numbers = [f[key] for f in figures for key in ("mean", "sd")]
                numbers += [entry["n_canaries"], entry["n_targets"]]
                if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
                    raise TypeError("a figure is not a number")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise FaceBoneError(f"{path} is damaged ({type(error).__name__}: {error})") from None
    return canaries


def run_shortcut(
    config: StudyConfig,
    cache: EmbeddingCache | None,
    workers: int = 1,
    progress: bool = True,
    force: bool = False,
    canaries: CanaryPlan | None = None,
    title: str = "FaceBone privacy report",
    sections: Callable[[StudyConfig, dict[str, Any]], Sequence[Section]] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Run `config` on the local executor (resuming a run stopped in its
    output folder), then the canary audit if planned, then the report, with
    `sections(config, results)` added (`reports.document.Section`s): the files written and
    the results reported (`reports.study.judged`)."""
    from facebone.reports.sources import write_folder_report
    from facebone.studies.engine import run_study
    from facebone.studies.executors import create_executor
    from facebone.studies.store import study_lock

    executor = create_executor("local", cache, None, workers)
    try:
        run_study(config, executor, progress, force)
    finally:
        executor.close()
    written = []
    with study_lock(config.output):
        if canaries is not None:
            written.append(audit_canaries(config, canaries, cache, progress, workers))
        # The report belongs to the study folder: replaced on every run, like the audit's.
        extra = None if sections is None else (lambda results: sections(config, results))
        report, results = write_folder_report(config.output, force=True, title=title, extra=extra)
    return [*written, *report], results
