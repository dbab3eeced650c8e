"""What `facebone report RESULTS_DIR` reads: a study's results store (`results.sqlite`, from
`facebone study run`, `facebone experiment` or `facebone audit`), the canary audit's
canaries.json and the inversion grid images beside it. Nothing outside the folder is read: a
grid that is a link leading out of it is skipped."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebone.attacks.membership.base import LEVELS
from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError
from facebone.reports.document import Figure, Section
from facebone.reports.study import judged

if TYPE_CHECKING:
    from facebone.studies.records import StudyRecords, ThreatRecord

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRID_FOLDERS = ("grids", "inversion")
# Files beside the results whose name marks them as inversion grids (as the demo reads them).
GRID_MARKER = "inversion"


@dataclass(frozen=True)
class LoadedResults:
    """Comparison-shaped results (`study.judged`), a description for the intro, and grids."""

    results: dict[str, Any]
    intro: tuple[str, ...]
    grids: tuple[Figure, ...]
    inversion: dict[str, dict[str, Any]]
    threats: tuple[ThreatRecord, ...] = ()
    data: Path | None = None  # the study's image folder, which the report stays out of


def runs_from_records(records: StudyRecords) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """`runs[regime][system]`, one run per split seed, from a store's typed records, in the
    shape `verdict.summarise_runs` reads."""
    attacks: dict[Any, dict[str, dict[str, Any]]] = {}
    for record in records.attacks:
        metrics = {
            "auc": record.auc,
            "advantage": record.advantage,
            "balanced_accuracy": record.balanced_accuracy,
            "tpr_at_fpr": dict(record.tpr_at_fpr),
            "roc": {"fpr": list(record.roc_fpr), "tpr": list(record.roc_tpr)},
            "shadows": record.shadows,
            "queries": record.queries,
            "n_members": record.n_members,
            "n_nonmembers": record.n_nonmembers,
        }
        by_level = attacks.setdefault(record.key.system_key, {})
        by_level.setdefault(record.key.level, {})[record.key.attack] = metrics
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for utility in records.utility:
        levels = attacks.get(utility.key)
        if not levels:
            continue  # a target without attacks has no privacy figures to report
        attack_sets = {tuple(sorted(by_name)) for by_name in levels.values()}
        if len(attack_sets) > 1 or set(levels) != set(LEVELS):
            # The figures over seeds and the verdict compare every attack at both levels.
            raise FaceBoneError(
                f"{utility.key.label()}: the report needs every attack at both levels "
                f"({', '.join(LEVELS)}); this study ran some at one level only"
            )
        run = {
            "system": dict(utility.params),
            "seed": utility.key.seed,
            "utility": {
                "accuracy": utility.accuracy,
                "auc": utility.auc,
                "tar_at_far": dict(utility.tar_at_far),
            },
            "train_accuracy": utility.train_accuracy,
            "privacy": {
                "epsilon": utility.epsilon,
                "delta": utility.delta,
                "tuning": None,
            },
            "attacks": levels,
            "timings": {"total_s": utility.total_s},
        }
        runs.setdefault(utility.key.regime, {}).setdefault(utility.key.system, []).append(run)
    return runs


def _ordered(runs: dict[str, dict[str, list]], order: Sequence[str]) -> dict[str, dict]:
    """Systems in `order`, any others after them."""
    rank = {name: index for index, name in enumerate(order)}
    return {
        regime: dict(sorted(by_system.items(), key=lambda item: rank.get(item[0], len(rank))))
        for regime, by_system in runs.items()
    }


def _planned_targets(study: dict[str, Any]) -> int | None:
    """How many targets the study's configuration (`study.json`) asks for, if it says."""
    try:
        splits = study["splits"]
        return sum(
            len(splits["regime_seeds"].get(regime, splits["seeds"]))
            for system in study["systems"].values()
            for regime in system["regimes"]
        )
    except (KeyError, TypeError, AttributeError):
        return None


def _study_intro(study: dict[str, Any], records: StudyRecords) -> tuple[str, ...]:
    seeds = sorted({u.key.seed for u in records.utility})
    attacks = sorted({a.key.attack for a in records.attacks})
    threats = sorted({f"{t.key.attack} ({t.key.family})" for t in records.threats})
    planned = _planned_targets(study)
    finished = f"{len(records.utility)}" + (f" of {planned}" if planned is not None else "")
    return (
        f"Study `{study.get('name', 'study')}` on `{study.get('data', '?')}`, configuration "
        f"hash `{str(study.get('config_hash', '?'))[:12]}`: {finished} targets trained and "
        f"attacked ({len(records.attacks)} membership and {len(records.threats)} other attack "
        f"results); split seeds {', '.join(map(str, seeds))}; membership attacks "
        f"{', '.join(attacks)}; other attacks {', '.join(threats) or 'none'}. Figures are "
        "means ± sd over seeds; attacks were trained on the attacker's people only and scored "
        "on the targets' members and non-members (membership) or on the enrolled people of "
        "target_test, whom the attacker never saw (the other threats).",
    )


def _from_store(folder: Path) -> tuple[dict[str, Any], tuple[str, ...], tuple, Path | None]:
    from facebone.studies.shortcuts import read_canaries
    from facebone.studies.store import ResultStore

    store = ResultStore(folder)
    records = store.records()
    runs = runs_from_records(records)
    if not runs:
        raise FaceBoneError(f"{folder} holds no finished targets yet; nothing to report")
    # Systems in the configuration's order (study.json lists them so), any others after.
    ordered = _ordered(runs, list(records.study.get("systems", {})))
    intro = _study_intro(records.study, records)
    return judged(ordered, read_canaries(folder)), intro, records.threats, store.data_root()


def _inside(folder: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _inversion_files(folder: Path, suffix: str) -> list[Path]:
    """Files ending in `suffix` in `grids/` or `inversion/` below `folder`, and those beside
    the results whose name says inversion; links that lead out of `folder` are skipped."""
    candidates = [p for p in sorted(folder.glob(f"*{suffix}")) if GRID_MARKER in p.name]
    for sub in GRID_FOLDERS:
        if (folder / sub).is_dir() and _inside(folder, folder / sub):
            candidates += sorted((folder / sub).rglob(f"*{suffix}"))
    kept = []
    for path in candidates:
        if path.is_file() and _inside(folder, path):
            kept.append(path)
        else:
            log.warning("skipping %s: not a file inside %s", path, folder)
    return kept


def find_inversion_scores(folder: Path) -> dict[str, dict[str, Any]]:
    """Every inversion result (a JSON object with "sar" by type) in the inversion JSON
    files, named by file and key path; unreadable files are skipped with a warning."""
    found: dict[str, dict[str, Any]] = {}

    def walk(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            return
        threats = value.get("threat_models")
        if isinstance(threats, dict):
            # `facebone attack inversion` output: a headline and each threat model's scores.
            about = [str(value[k]) for k in ("method", "backbone") if k in value]
            label = f"{where} ({', '.join(about)})" if about else where
            for threat, scores in threats.items():
                walk(scores, f"{label} / {threat}")
        elif isinstance(value.get("sar"), dict) and isinstance(value["sar"].get("type1"), dict):
            if _inversion_shape(value):
                found[where] = value
            else:
                log.warning("skipping %s: not the figures of an inversion attack", where)
        else:
            for key, inner in value.items():
                walk(inner, f"{where} / {key}")

    for path in _inversion_files(folder, ".json"):
        try:
            walk(parse_json(path.read_text(encoding="utf-8")), str(path.relative_to(folder)))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            log.warning("skipping %s: %s", path, error)
    return found


def _inversion_shape(value: dict[str, Any]) -> bool:
    """Whether an inversion result holds what the report's table shows, as numbers."""

    def numbers(table: Any) -> bool:
        return isinstance(table, dict) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in table.values()
        )

    sar = value["sar"]
    return (
        all(numbers(sar.get(kind, {})) for kind in ("type1", "type2"))
        and numbers(value.get("chance", {}))
        and (value.get("ssim") is None or numbers({"ssim": value["ssim"]}))
    )


def find_grids(folder: Path) -> tuple[Figure, ...]:
    """The inversion grid images (PNG) of `folder` (`_inversion_files`); a file that is not
    a PNG is skipped with a warning."""
    grids = []
    for number, path in enumerate(_inversion_files(folder, ".png"), 1):
        data = path.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            log.warning("skipping %s: not a PNG image", path)
            continue
        relative = path.relative_to(folder)
        # Named so that a later report does not take its own copy for another grid.
        grids.append(Figure(f"faces-{number}.png", data, f"Inversion grid `{relative}`"))
    return tuple(grids)


def load_results(folder: str | Path) -> LoadedResults:
    """The results of the study store in `folder`."""
    from facebone.studies.store import DATABASE

    folder = Path(folder)
    if not folder.is_dir():
        raise FaceBoneError(f"results folder {folder} does not exist or is not a folder")
    if not (folder / DATABASE).is_file():
        raise FaceBoneError(f"{folder} holds no study results ({DATABASE})")
    results, intro, threats, data = _from_store(folder)
    grids, inversion = find_grids(folder), find_inversion_scores(folder)
    return LoadedResults(results, intro, grids, inversion, threats, data)


def write_folder_report(
    folder: str | Path,
    out: str | Path | None = None,
    force: bool = False,
    title: str = "FaceBone privacy report",
    extra: Callable[[dict[str, Any]], Sequence[Section]] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """The report of the results in `folder`, as `out` (default `folder/report.html`) and
    its Markdown summary, with `extra(results)` sections: the paths written, and the
    results reported (`study.judged`)."""
    from facebone.atomic import check_outside_data
    from facebone.reports.output import check_report_path, report_files, write_report
    from facebone.reports.study import build_report

    out = check_report_path(Path(folder) / "report.html" if out is None else Path(out))
    loaded = load_results(folder)
    report = build_report(
        loaded.results,
        title,
        loaded.intro,
        loaded.grids,
        loaded.inversion,
        () if extra is None else extra(loaded.results),
        loaded.threats,
    )
    if loaded.data is not None:
        html, markdown, figures = report_files(report, out)
        for path in (html, markdown, *figures):
            check_outside_data(path, loaded.data, "the report file")
    return write_report(report, out, force), loaded.results
