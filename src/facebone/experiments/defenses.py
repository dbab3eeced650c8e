"""Named defense configurations: each is the FR system a defender would deploy.

A defense fixes the backbones, the predictor and the mitigation policy of an `FRSystem`; the
training regime (`regimes.py`) adds how long and on how much the nn predictor trains, so every
nn-based defense is compared under the same training recipe.

- `none`: the undefended system, SFace + nn predictor.
- `multi-<assign>-<infer>`: FaceBone's mitigation, SFace + dlib, one nn predictor for both.
  Five of the 3 x 3 policy grid: every assignment policy with random inference
  (`multi-rr-random` is the original prototype's), and every inference policy with `all`
  assignment (`multi-all-random`, `multi-all-fixed` answering through SFace,
  `multi-all-ensemble`).
- `dp-eps<E>`: SFace + nn trained with DP-SGD (Opacus) to epsilon E at delta <= 1/n, its
  clipping norm and epochs tuned for utility on the attacker's pairs (`dp_tuning.py`).
- `relaxloss`: SFace + nn trained with RelaxLoss (alpha 0.5).
- `split-distill-<teacher>`: SFace + dlib, identity-disjoint shards with cosine or nn
  teachers, distilled into one nn on a set 4 times larger; ensemble inference.
- `cosine`: SFace + the cosine predictor, a one-parameter calibrated threshold.
- `multi-cosine`: SFace + dlib, cosine predictor with a threshold per backbone, `all`
  assignment, random inference.
- `cosine-fusion`: SFace + dlib, calibrated cosine scores fused (mean probability over both
  backbones): deterministic, and a handful of parameters.
- `cosine-fusion-ckks`: `cosine-fusion` with CKKS-encrypted templates (`protection/ckks.py`):
  each answer matches the encrypted template of the first image with the plain second one and
  decrypts only the score; the keys are drawn from the operating system's entropy.
- `cosine-fusion-public`: `cosine-fusion` with a member-free calibration: its four numbers are
  fitted on a public calibration set of other people (in a study, the attacker's pairs: the
  worst case, the attacker knows them), never on the members, so they tell nothing of who
  the members are (`attacks/membership/parameter.py` reads them otherwise).
- `cosine-fusion-decision`: `cosine-fusion` whose clients see only its decision (output
  hardening, `system/output_policy.py`).
- `cosine-fusion-hardened`: the three together: public calibration, encrypted templates,
  decisions only.
- `cosine-fusion-suppress`: `cosine-fusion` on templates with `SUPPRESSED_DIRECTIONS` linear
  gender directions removed from each backbone (INLP, `protection/attribute_suppression.py`),
  fitted on the attacker's pairs, which stand for public faces of non-members: a defense
  against attribute inference, not membership.

Each is registered in `DEFENSES` (facebone/registry.py) and built with `create_defense(name)`.
A new defense is one module with a function decorated `@register_defense("name")` that returns
its `Defense`; importing that module makes it available to `create_defense` and
`list_defenses`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facebone.registry import Registry

TWO_BACKBONES = ("sface", "dlib")
UNDEFENDED = "none"
# How reports, the demo and the CLI show the undefended system: "none" reads as English
# ("Missing the goal: none", "Recommended: none").
UNDEFENDED_LABEL = "undefended"


def display_name(defense: str) -> str:
    """The name a defense is shown by (`UNDEFENDED_LABEL` for `UNDEFENDED`)."""
    return UNDEFENDED_LABEL if defense == UNDEFENDED else defense


# Gender directions `cosine-fusion-suppress` removes from each backbone's 128-D templates: the
# most that keep the utility target (accuracy >= 0.99, AUC >= 0.995) on every split seed. On
# LFW seeds 0-2 it takes the gender balanced accuracy of the service's answers from 0.94 to
# 0.67 and of retrained template attacks from 0.95 to 0.62 (dlib kNN and MLP); 100 directions
# reach 0.61 and 0.56 at accuracy 0.977 (protection/attribute_suppression.py).
SUPPRESSED_DIRECTIONS = 80


@dataclass(frozen=True)
class Defense:
    """One deployable configuration: the `FRSystem` options a regime does not set."""

    name: str
    description: str
    backbones: tuple[str, ...] = ("sface",)
    predictor: str = "nn"
    predictor_params: dict[str, Any] = field(default_factory=dict)
    mitigation: str = "none"
    assign: str = "all"
    infer: str = "random"
    fixed_backbone: str | None = None
    system_options: dict[str, Any] = field(default_factory=dict)
    output: str = "probability"  # what a client sees (`system.output_policy`)

    @property
    def uses_nn(self) -> bool:
        return self.predictor == "nn"

    @property
    def dp_epsilon(self) -> float | None:
        return self.predictor_params.get("dp_epsilon")

    def system_params(self, nn_params: dict[str, Any], seed: int) -> dict[str, Any]:
        """`FRSystem(**...)` options: the regime's nn options under the defense's own."""
        params = {**nn_params, **self.predictor_params} if self.uses_nn else {}
        return {
            "backbones": list(self.backbones),
            "predictor": self.predictor,
            "predictor_params": params,
            "mitigation": self.mitigation,
            "assign": self.assign,
            "infer": self.infer,
            "fixed_backbone": self.fixed_backbone,
            "seed": seed,
            **self.system_options,
        }


def _multi(assign: str, infer: str, short: str) -> Defense:
    return Defense(
        name=f"multi-{short}-{infer}",
        description=(
            f"SFace + dlib, nn predictor; training pairs assigned {assign}, "
            f"queries answered {'through SFace' if infer == 'fixed' else infer}"
        ),
        backbones=TWO_BACKBONES,
        mitigation="multi",
        assign=assign,
        infer=infer,
        fixed_backbone="sface" if infer == "fixed" else None,
    )


def _dp(epsilon: float) -> Defense:
    return Defense(
        name=f"dp-eps{epsilon:g}",
        description=(
            f"SFace + nn trained with DP-SGD (Opacus) to epsilon {epsilon:g}, clipping norm "
            "and epochs tuned on the attacker's pairs"
        ),
        predictor_params={"dp_epsilon": float(epsilon)},
    )


def _split_distill(teacher: str) -> Defense:
    return Defense(
        name=f"split-distill-{teacher}",
        description=(
            f"SFace + dlib, 4 identity-disjoint shards with {teacher} teachers, distilled into "
            "one nn on 4x as many pairs from the members' images; ensemble inference"
        ),
        backbones=TWO_BACKBONES,
        mitigation="split-distill",
        infer="ensemble",
        system_options={"shards": 4, "teacher": teacher, "distill_factor": 4.0},
    )


def _fusion(
    name: str, description: str, output: str = "probability", **system_options: Any
) -> Defense:
    """`cosine-fusion` with more of the system's options set, answering as `output` says."""
    return Defense(
        name,
        description,
        backbones=TWO_BACKBONES,
        predictor="cosine",
        mitigation="multi",
        infer="ensemble",
        system_options=system_options,
        output=output,
    )


# The built-ins register below; a defense shipped in a module of its own is named here as one of
# `builtin_modules`, so that a look-up imports it.
DEFENSES: Registry[Defense] = Registry("defense")
register_defense = DEFENSES.register
list_defenses = DEFENSES.list  # in the order a full comparison runs them
create_defense = DEFENSES.create
get_defense = create_defense  # the name most callers know


def _register_builtin(defense: Defense) -> None:
    """Register a built-in configuration under its own name; it is frozen, so every look-up
    may hand out the same one."""
    register_defense(defense.name)(lambda: defense)


for _defense in (
    Defense(UNDEFENDED, "undefended: SFace + nn predictor"),
    _multi("round-robin", "random", "rr"),
    _multi("random", "random", "random"),
    _multi("all", "random", "all"),
    _multi("all", "fixed", "all"),
    _multi("all", "ensemble", "all"),
    _dp(1.0),
    _dp(4.0),
    _dp(8.0),
    Defense(
        "relaxloss",
        "SFace + nn trained with RelaxLoss, alpha 0.5",
        predictor_params={"relax_alpha": 0.5},
    ),
    _split_distill("cosine"),
    _split_distill("nn"),
    Defense("cosine", "SFace + cosine predictor (a calibrated threshold)", predictor="cosine"),
    Defense(
        "multi-cosine",
        "SFace + dlib, cosine predictor with a threshold per backbone, random inference",
        backbones=TWO_BACKBONES,
        predictor="cosine",
        mitigation="multi",
    ),
    _fusion(
        "cosine-fusion", "SFace + dlib, calibrated cosine scores fused (mean over both backbones)"
    ),
    _fusion(
        "cosine-fusion-ckks",
        "cosine-fusion with CKKS-encrypted templates, only the score decrypted",
        template_protection="ckks",
    ),
    _fusion(
        "cosine-fusion-public",
        "cosine-fusion calibrated on public pairs of other people, never on the members",
        calibration="public",
    ),
    _fusion(
        "cosine-fusion-decision",
        "cosine-fusion answering its decision only (output hardening)",
        output="decision",
    ),
    _fusion(
        "cosine-fusion-hardened",
        "cosine-fusion calibrated on public pairs, CKKS-encrypted templates, decisions only",
        calibration="public",
        template_protection="ckks",
        output="decision",
    ),
    Defense(
        "cosine-fusion-suppress",
        f"cosine-fusion on templates with {SUPPRESSED_DIRECTIONS} gender directions removed "
        "per backbone (INLP fitted on public faces of non-members)",
        backbones=TWO_BACKBONES,
        predictor="cosine",
        mitigation="multi",
        infer="ensemble",
        system_options={"attribute_suppression": SUPPRESSED_DIRECTIONS},
    ),
):
    _register_builtin(_defense)
