"""Audit a user's own face model: the systems a deployer would build on it, attacked.

From an image folder in LFW layout the audit makes the identity-disjoint pair protocol of
each split seed (`data.pairs.make_protocol`), trains on the user's backbones the systems a
deployer would choose between (an nn predictor undefended and with RelaxLoss or DP-SGD, the
cosine predictor, and over two or more backbones FaceBone's multi-backbone nn and the fused
cosine), runs online and offline LiRA and the gradient-boosting black-box attack at pair and
identity level against each, and stores the results like any study. The study's configuration
is written as TOML (`config.toml` in the output folder), so `facebone study run` can rerun or
resume it, and a rerun of the same audit resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebone.atomic import check_outside_data
from facebone.errors import FaceBoneError

ATTACKS = ("lira-online", "lira", "blackbox-gb")
DEFAULT_SEEDS = (0, 1, 2)
QUICK_SEEDS = (0,)
QUICK_SHADOWS = 8
DEFAULT_DP_EPSILON = 8.0
RELAX_ALPHA = 0.5
# Each of the three roles needs people with two images (its same-person pairs) and at least
# two people (its different-person pairs): three per role is the least that makes both.
MIN_PEOPLE_WITH_PAIRS = 9


@dataclass(frozen=True)
class AuditPlan:
    """What to audit: `backbones` (specs such as `onnx:PATH`; the first serves the
    single-backbone systems), the image folder `data`, the results folder `out`, the split
    `seeds`, shadows per attack (None: each attack's own default), the DP budget (None: no
    DP system) and optionally a subset of `audit_systems` by name."""

    backbones: tuple[str, ...]
    data: Path
    out: Path
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    shadows: int | None = None
    dp_epsilon: float | None = DEFAULT_DP_EPSILON
    systems: tuple[str, ...] | None = None


def audit_systems(backbones: Sequence[str], dp_epsilon: float | None) -> dict[str, dict]:
    """The systems of an audit, as `[[systems.table]]` entries of a study config."""
    first = [backbones[0]]
    systems: dict[str, dict[str, Any]] = {
        "none": {"backbones": first, "predictor": "nn", "description": "undefended nn"},
        "cosine": {"backbones": first, "predictor": "cosine", "description": "cosine threshold"},
        "relaxloss": {
            "backbones": first,
            "predictor": "nn",
            "predictor_params": {"relax_alpha": RELAX_ALPHA},
            "description": f"nn trained with RelaxLoss, alpha {RELAX_ALPHA:g}",
        },
    }
    if dp_epsilon is not None:
        systems[f"dp-eps{dp_epsilon:g}"] = {
            "backbones": first,
            "predictor": "nn",
            "dp_epsilon": float(dp_epsilon),
            "description": f"nn trained with DP-SGD to epsilon {dp_epsilon:g}",
        }
    if len(backbones) > 1:
        every = list(backbones)
        systems["multi"] = {
            "backbones": every,
            "predictor": "nn",
            "mitigation": "multi",
            "assign": "all",
            "infer": "random",
            "description": "one nn over every backbone, a backbone drawn per query",
        }
        systems["cosine-fusion"] = {
            "backbones": every,
            "predictor": "cosine",
            "mitigation": "multi",
            "infer": "ensemble",
            "description": "calibrated cosine scores fused over every backbone",
        }
    for name, entry in systems.items():
        entry["description"] = f"{' + '.join(entry['backbones'])}: {entry['description']}"
        entry["name"] = name
    return systems


def _absolute(spec: str) -> str:
    """`onnx:model.onnx` with its file as an absolute path, so the configuration runs from
    any folder."""
    name, _, weights = spec.partition(":")
    return f"{name}:{Path(weights).resolve()}" if weights else spec


def audit_toml(plan: AuditPlan) -> str:
    """The audit as a study configuration; it lives in the output folder (`output = "."`)."""
    from facebone.studies.config import toml_value

    backbones = [_absolute(spec) for spec in plan.backbones]
    systems = audit_systems(backbones, plan.dp_epsilon)
    chosen = plan.systems or tuple(systems)
    lines = [
        "# A FaceBone audit: rerun or resume with `facebone study run config.toml`.",
        'name = "audit"',
        f"data = {toml_value(str(plan.data.resolve()))}",
        'output = "."',
        f"backbones = {toml_value(backbones)}",
        "",
        "[splits]",
        f"seeds = {toml_value(list(plan.seeds))}",
        "",
        "[systems]",
        'regimes = ["default"]',
    ]
    for name in chosen:
        lines += ["", "[[systems.table]]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in systems[name].items()]
    for attack in ATTACKS:
        lines += ["", "[[attacks]]", f"name = {toml_value(attack)}"]
        if plan.shadows is not None:
            lines.append(f"shadows = {plan.shadows}")
    return "\n".join(lines) + "\n"


def check_plan(plan: AuditPlan) -> None:
    """Every mistake the audit can see before any work, as one sentence."""
    from facebone.backbones import create_backbone
    from facebone.data.lfw import scan_lfw
    from facebone.studies.config import attack_min_shadows
    from facebone.studies.store import DATABASE

    if not plan.backbones:
        raise FaceBoneError("name at least one backbone to audit")
    if len(set(plan.backbones)) != len(plan.backbones):
        raise FaceBoneError(f"a backbone is named twice: {', '.join(plan.backbones)}")
    if not plan.seeds or len(set(plan.seeds)) != len(plan.seeds) or min(plan.seeds) < 0:
        raise FaceBoneError(f"seeds must be distinct whole numbers >= 0, got {plan.seeds}")
    if plan.shadows is not None:
        needs = {name: attack_min_shadows(name) for name in ATTACKS}
        strictest = max(needs, key=needs.get)
        if plan.shadows < needs[strictest]:
            raise FaceBoneError(
                f"the number of shadows must be at least {needs[strictest]} ({strictest} "
                f"needs that many), got {plan.shadows}"
            )
    if plan.dp_epsilon is not None and plan.dp_epsilon <= 0:
        raise FaceBoneError(f"the DP epsilon must be above 0, got {plan.dp_epsilon}")
    known = audit_systems(plan.backbones, plan.dp_epsilon)
    unknown = [name for name in plan.systems or () if name not in known]
    if unknown or (plan.systems is not None and not plan.systems):
        raise FaceBoneError(
            f"unknown audit system {', '.join(unknown) or '(none given)'}; choose from: "
            f"{', '.join(known)}"
        )
    if not plan.data.is_dir():
        raise FaceBoneError(f"data folder {plan.data} does not exist or is not a folder")
    check_outside_data(plan.out, plan.data, "the output folder")
    if plan.out.exists():
        if not plan.out.is_dir():
            raise FaceBoneError(f"the output folder {plan.out} exists and is not a folder")
        if any(plan.out.iterdir()) and not (plan.out / DATABASE).is_file():
            raise FaceBoneError(
                f"the output folder {plan.out} already holds files that are not an audit's; "
                "choose a new or empty folder"
            )
    people: dict[str, int] = {}
    for image in scan_lfw(plan.data):
        people[image.identity] = people.get(image.identity, 0) + 1
    with_pairs = sum(count >= 2 for count in people.values())
    if with_pairs < MIN_PEOPLE_WITH_PAIRS:
        raise FaceBoneError(
            f"{plan.data}: {with_pairs} {'person has' if with_pairs == 1 else 'people have'} "
            "two or more photos; an audit needs at "
            f"least {MIN_PEOPLE_WITH_PAIRS} (three for each of the members, the non-members "
            "and the attacker) in folders of one person each"
        )
    for spec in plan.backbones:
        create_backbone(spec).close()  # an unreadable model file fails here, not mid-study


def audit_config(plan: AuditPlan):
    """The checked study configuration of `plan` (`studies.config.StudyConfig`)."""
    from facebone.studies.config import load_config
    from facebone.studies.store import CONFIG_COPY

    text = audit_toml(plan)
    with tempfile.TemporaryDirectory(prefix="facebone-audit-") as folder:
        source = Path(folder) / CONFIG_COPY
        source.write_text(text, encoding="utf-8")
        config = load_config(source, data=plan.data, output=plan.out)
    # Where the store keeps its copy of the text: the configuration to rerun.
    return dataclasses.replace(config, source=plan.out / CONFIG_COPY)


def run_audit(
    plan: AuditPlan, executor, progress: bool = True
) -> tuple[list[Path], dict[str, Any]]:
    """Check `plan`, run its study into `plan.out` (resuming one stopped there) and write
    its report there: the report files, and the results reported (`reports.study.judged`)."""
    from facebone.reports.sources import write_folder_report
    from facebone.studies.engine import run_study
    from facebone.studies.store import study_lock

    check_plan(plan)
    run_study(audit_config(plan), executor, progress)
    with study_lock(plan.out):
        # The audit's own report in its own folder: replaced on every run.
        return write_folder_report(plan.out, force=True, title="FaceBone privacy audit")
