"""Erasure: a subject deleted from the gallery also leaves every trained part of the deployed
system, and a membership attack checks that the deletion held.

Deleting a subject's templates is not enough when the person was also in the data the system
was trained on: a calibration or a network fitted on their pairs still carries them
(`attacks/membership`). `erase_subject` therefore

1. finds the training people the subject is (`matched_people`): every person (a folder of the
   data root) of the training and public pairs whose photos the subject matches, at least
   `MATCH_SHARE` of them, through the gallery's own 1:1 decision;
2. drops every pair that holds a photo of theirs and refits the system from scratch with the
   same options, template-protection keys and attribute suppressions (`retrain`): exact
   unlearning, the model that would have been trained had they never been there. For a
   calibrated distance predictor that is a calibration (milliseconds); for an nn predictor a
   full training;
3. saves it atomically in place of the model directory, hands the remaining data to the
   caller to keep (the data the next erasure is checked against), then deletes the subject
   from the gallery (`gallery.delete`): a crash in between leaves a retrained model and a
   subject that a second run finds again (the data given may then be the remaining data, see
   `check_training_data`);
4. with `verify`, checks the saved model against a fresh fit on the remaining pairs (calibrated
   predictors) and runs the strongest applicable membership attack on the person, before and
   after (`membership_check`).

What is kept: the template-protection keys and the attribute suppression fix every template
the gallery stores, so they are reused, never refitted. They were fitted on faces too: a
BioHash key is centred on the mean unit embedding of the training faces, and a suppression's
gender directions are fitted on the public faces; the person weighs 1/N in that mean or in
those directions (N: hundreds to thousands of faces), and refitting them would void every
enrolled template. The report says when the person was among those faces
(`ErasureReport.kept_parts_saw_person`). Because they are kept, the gallery stays bound to the
retrained model (`gallery.model_identity` covers only what templates depend on).

Which data: what the model records it was fitted on (`training_data`). A system calibrated
on public pairs (`calibration="public"`, the recommended deployment) fits every trained part
on the public pairs alone and records them as its training pairs; its members' pairs trained
nothing, so erasure takes the public pairs only, looks for the person there, and refits on
them without the person. The data given is checked against the SHA-256 the model records
before anything is matched (`recorded_training_data`): a wrong file fails in milliseconds.

What is printed: counts only. The folder names of the training data are names of real people,
and naming the one an opaque subject id matched would tie the id to a name, which the gallery
never does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from facebone.attacks.base import identity_of
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.embeddings.embedder import Embedder
    from facebone.protection import TemplateProtection
    from facebone.system import FRSystem

# A training person is the subject when at least this share of their photos match it. A
# majority of photos decides: one false match (about 1 % of photos for an LFW-accurate
# system) does not mark a person who has several photos, and up to half of a person's photos
# may fail to match (pose, age, lighting) before the person is missed. Missing a person
# leaves them in the model (the privacy failure); marking a stranger only costs their pairs,
# so the share leans towards recall and is not higher.
MATCH_SHARE = 0.5
# The attack shows the deletion held when it found the person before (p-value <= ALPHA among
# people who never were members) and not after (p > ALPHA). One person is one draw: a clean
# deletion fails it in about 5 % of the checks, and a small leak often passes it.
ALPHA = 0.05
# Never-members the person's score is ranked among: at least MIN_REFERENCE, at most
# MAX_REFERENCE (the attack scores each of their pairs; the p-value's resolution is
# 1 / (reference + 1)).
MIN_REFERENCE = 10
MAX_REFERENCE = 60
# The parameter attack's shadows: exact calibrations (cheap), and the counterfactual refits
# that measure each candidate pair's influence (one calibration per candidate pair each).
PARAMETER_SHADOWS = 1024
PARAMETER_COUNTERFACTUAL = 16
# RMIA's shadows for an nn predictor: each is a full training, so a few (RMIA is the attack
# that needs the fewest).
RMIA_SHADOWS = 4
# Saved and freshly fitted parameters agree to this (relative) tolerance.
TOLERANCE = 1e-9

# The subject's 1:1 decision for each row of raw embeddings {backbone: (N, D)}.
Match = Callable[[Mapping[str, np.ndarray]], np.ndarray]


class ErasableGallery(Protocol):
    """What erasure needs of a gallery (`gallery.Gallery`)."""

    system: FRSystem

    def matches(self, subject: str, embeddings: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def delete(self, subject: str) -> int: ...


@dataclass(frozen=True)
class TrainingData:
    """The data a model was trained on: the data folder `root` (one folder per person), its
    training `pairs`, and the `public_pairs` of other people that a public calibration or an
    attribute suppression was fitted on (None if the system uses none)."""

    root: Path
    pairs: Sequence[Pair]
    public_pairs: Sequence[Pair] | None = None

    def people(self) -> set[str]:
        return _people(self._all_pairs())

    def images(self) -> list[str]:
        """Every distinct photo of the pairs and public pairs, in first-seen order."""
        return list(dict.fromkeys(p for pair in self._all_pairs() for p in pair[:2]))

    def without(self, people: Collection[str]) -> TrainingData:
        """The data without every pair that holds a photo of one of `people`."""

        def kept(pairs: Sequence[Pair]) -> list[Pair]:
            return [p for p in pairs if not {identity_of(p.image1), identity_of(p.image2)} & people]

        people = set(people)
        public = None if self.public_pairs is None else kept(self.public_pairs)
        return TrainingData(self.root, kept(self.pairs), public)

    def _all_pairs(self) -> list[Pair]:
        """The pairs and public pairs, each distinct pair once (they are the same list for a
        system calibrated on public pairs, `training_data`)."""
        return list(dict.fromkeys([*self.pairs, *(self.public_pairs or ())]))


@dataclass(frozen=True)
class MembershipCheck:
    """The person's identity-level membership score against the system before and after the
    deletion, ranked among `reference` people who never were members: the share of them
    scoring below (`percentile`) and the p-value `(1 + #reference >= person) / (reference + 1)`.
    `held`: `_attack_verdict` (None: the attack has no power on this person)."""

    attack: str
    reference: int
    pairs: int  # the person's candidate pairs the score is the mean of
    percentile_before: float
    percentile_after: float
    p_before: float
    p_after: float
    held: bool | None


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did. `people_matched` counts training people (never named: their
    folder names are real names); `remaining` is the data the model now records, which the
    caller keeps for the next erasure (not part of `to_dict`). `exact_unlearning`: the saved
    model equals a fresh fit on the remaining data (None: not checked; nn predictors, or no
    `verify`). `held` (None without `verify`, or when an interrupted run had already retrained
    the model, or when the attack has no power and no exact check applies): True when no
    training person matched; for calibrated predictors, whether the saved model equals a fresh
    fit without the person (the proof); otherwise the attack's verdict (`MembershipCheck`)."""

    subject: str
    faces_removed: int
    people_matched: int
    pairs_removed: int
    public_pairs_removed: int
    retrained: bool
    retrain_seconds: float | None
    kept_parts_saw_person: bool
    exact_unlearning: bool | None
    membership: MembershipCheck | None
    held: bool | None
    remaining: TrainingData | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["remaining"]
        return data


def matched_people(match: Match, embedder: Embedder, data: TrainingData) -> set[str]:
    """The people of `data` (folder names) at least `MATCH_SHARE` of whose photos `match`
    accepts; `match` gets the raw embeddings of every photo of the pairs and public pairs,
    `{backbone: (N, D)}`, and answers one decision per row."""
    images = data.images()
    if not images:
        return set()
    table = embedder.dataset(data.root, images)
    embeddings = {name: np.stack([table[name][p] for p in images]) for name in embedder.names}
    decisions = np.asarray(match(embeddings))
    if decisions.shape != (len(images),):
        raise FaceBoneError(
            f"the match function gave {decisions.shape} decisions for {len(images)} photos"
        )
    owners = np.array([identity_of(p) for p in images])
    people, index = np.unique(owners, return_inverse=True)
    share = np.bincount(index, weights=decisions.astype(float)) / np.bincount(index)
    return {str(person) for person in people[share >= MATCH_SHARE]}


def _uses_public(system: FRSystem) -> bool:
    return system.calibration == "public" or system.attribute_suppression is not None


def training_data(
    config: dict,
    root: str | Path,
    pairs: Sequence[Pair] | None,
    public_pairs: Sequence[Pair] | None,
) -> TrainingData:
    """The data the model `config` (model_dir's config.json) was fitted on, from the pairs
    given: its members' `pairs`, and the `public_pairs` its calibration or attribute
    suppression was fitted on. A system calibrated on public pairs fitted everything on them
    (`FRSystem.fit_many` records them as its training pairs), so its data is the public pairs
    as both; members' pairs given to it are refused, as giving them says the caller believes
    they matter. What is missing, or given to a model that used none, is refused too."""
    from facebone.system.fr_system import FRSystem

    system = FRSystem(**config["system"])
    if system.calibration == "public":
        if pairs is not None:
            raise FaceBoneError(
                "the model is calibrated on public pairs only: its members' pairs trained "
                "nothing and hold nothing to erase; give its public pairs alone"
            )
        if public_pairs is None:
            raise FaceBoneError(
                "the model was fitted on public pairs only; give them (its members' pairs "
                "trained nothing)"
            )
        return TrainingData(Path(root), list(public_pairs), list(public_pairs))
    if pairs is None:
        raise FaceBoneError("the model was trained on its members' pairs; give them")
    if _uses_public(system) != (public_pairs is not None):
        raise FaceBoneError(
            "the model's attribute suppression was fitted on public pairs; give them"
            if _uses_public(system)
            else "public pairs were given but the model was fitted on none"
        )
    public = None if public_pairs is None else list(public_pairs)
    return TrainingData(Path(root), list(pairs), public)


def _recorded(config: dict, data: TrainingData) -> bool:
    from facebone.system.fr_system import pairs_sha256
    from facebone.system.model_dir import recorded_public_sha256

    return pairs_sha256(data.pairs) == config["training_pairs_sha256"] and (
        data.public_pairs is None
        or pairs_sha256(data.public_pairs) == recorded_public_sha256(config)
    )


_NOT_RECORDED = (
    "the training data given is not what the model was trained on (its SHA-256 differs "
    "from the one the model directory records); give the pairs it was trained on"
)


def recorded_training_data(config: dict, data: TrainingData) -> bool:
    """Whether `data` is what the model `config` records (True), or may be it with some
    people still in it (False: a second run of an erasure that saved the model and stopped
    before deleting the subject, told apart by `check_training_data` once the people are
    matched). What can be neither is refused now, before any matching: public pairs that do
    not fit the model, or training pairs whose SHA-256 differs and that are not more than
    the model records (removing people removes pairs)."""
    from facebone.system.fr_system import FRSystem, pairs_sha256
    from facebone.system.model_dir import recorded_public_sha256

    system = FRSystem(**config["system"])
    uses_public = _uses_public(system)
    if uses_public and recorded_public_sha256(config) is None:
        raise FaceBoneError(
            "the model records no SHA-256 of its public pairs (saved by an older FaceBone), so "
            "the public pairs given cannot be checked; retrain it with this FaceBone"
        )
    if uses_public != (data.public_pairs is not None):
        raise FaceBoneError(
            "the model was fitted on public pairs; give them"
            if uses_public
            else "public pairs were given but the model was fitted on none"
        )
    if _recorded(config, data):
        return True
    training_differs = pairs_sha256(data.pairs) != config["training_pairs_sha256"]
    if training_differs and len(data.pairs) <= int(config["n_training_pairs"]):
        raise FaceBoneError(_NOT_RECORDED)
    return False


def check_training_data(config: dict, data: TrainingData, people: Collection[str]) -> bool:
    """Whether the model `config` (model_dir's config.json) still holds `people`: True when
    `data` is what it records, False when `data` without `people` is (a second run after the
    model was saved and before the subject was deleted). Anything else is refused: retraining
    on other data would deploy a different system."""
    if recorded_training_data(config, data):
        return True
    if people and _recorded(config, data.without(people)):
        return False
    raise FaceBoneError(_NOT_RECORDED)


def retrain(
    params: dict,
    embedder: Embedder,
    data: TrainingData,
    keys: Mapping[str, TemplateProtection] | None,
    suppressions: Mapping[str, object] | None,
) -> FRSystem:
    """`FRSystem(**params)` fitted from scratch on `data` with the given keys and attribute
    suppressions (those of the deployed system: they fix the stored templates)."""
    from facebone.system import FRSystem

    if not data.pairs:
        raise FaceBoneError("no training pairs would remain; the model cannot be retrained")
    system = FRSystem(**params)
    public = list(data.public_pairs) if _uses_public(system) else None
    return system.fit(
        embedder,
        data.root,
        list(data.pairs),
        keys=keys or None,
        public_pairs=public,
        suppressions=suppressions or None,
    )


def is_calibrated(system: FRSystem) -> bool:
    """Whether the system's whole fit is a deterministic calibration (distance predictors)."""
    from facebone.predictors import DistancePredictor

    return system.mitigation != "split-distill" and isinstance(system.predictor_, DistancePredictor)


def saved_equals_fresh(model_dir: str | Path, fresh: FRSystem) -> bool:
    """Whether the predictor saved in `model_dir`, and the training pairs it records, equal
    `fresh` (a system fitted on the remaining data), to `TOLERANCE`."""
    from safetensors.numpy import load

    from facebone.system.model_dir import WEIGHTS, read_config

    config = read_config(model_dir)
    weights = (Path(model_dir) / WEIGHTS).read_bytes()
    if hashlib.sha256(weights).hexdigest() != config.get("predictor_sha256"):
        return False
    saved = load(weights)
    state, tensors = fresh.predictor_.get_state()
    return (
        config["training_pairs_sha256"] == fresh.training_pairs_sha256_
        and config["predictor"]["name"] == state["name"]
        and sorted(saved) == sorted(tensors)
        and all(np.allclose(saved[k], tensors[k], rtol=TOLERANCE, atol=0) for k in tensors)
    )


def membership_check(
    before: FRSystem,
    after: FRSystem,
    people: Collection[str],
    data: TrainingData,
    seed: int,
) -> MembershipCheck:
    """The deleted person's identity-level membership score against `before` (trained on
    `data`) and `after` (trained on `data` without `people`, who are one person), ranked
    among never-members of the data folder.

    The attack is the strongest that applies: the parameter attack for a calibrated distance
    predictor whose calibration an attacker can read, else RMIA with `RMIA_SHADOWS` shadows
    trained like the system. Its candidates are the person's training pairs and, for each
    reference person (a never-member, neither in the pairs nor in the public pairs), as many
    same- and different-person pairs of theirs; a person's score is the mean over their
    pairs. The attacker's own pairs are of the other never-members.

    One person is one sample: the p-value of a never-member is uniform, so this check fails a
    clean deletion in ALPHA of the runs, and passes a small remaining leak often (little
    power). The exact-unlearning check (`saved_equals_fresh`) is the proof for calibrated
    predictors; this one shows what an attacker sees.
    """
    from facebone.data.lfw import scan_lfw

    people = set(people)
    mine = [p for p in data._all_pairs() if _holds(p, people)]
    if not mine:
        raise FaceBoneError("the deleted person has no training pairs to check")
    rng = np.random.default_rng([seed, 17])
    by_person: dict[str, list[str]] = {}
    members = data.people() | people
    for image in scan_lfw(data.root):
        if image.identity not in members:
            by_person.setdefault(image.identity, []).append(image.path)
    names = sorted(by_person)
    order = rng.permutation(len(names))
    reference_side = [names[i] for i in order[: len(names) // 2]]
    attacker_side = [names[i] for i in order[len(names) // 2 :]]
    mine, references = _reference_pairs(mine, reference_side, by_person, rng)
    attacker = _attacker_pairs(attacker_side, by_person, rng)
    candidates = mine + [p for pairs in references for p in pairs]
    owners = np.repeat(np.arange(len(references) + 1), [len(mine), *map(len, references)])
    results = []
    for system, trained_on in ((before, data), (after, data.without(people))):
        name, scores = _attack_scores(system, trained_on, candidates, attacker, seed)
        per_owner = np.bincount(owners, weights=scores) / np.bincount(owners)
        results.append((name, per_owner[0], per_owner[1:]))
    (name, s_before, r_before), (_, s_after, r_after) = results
    p_before, p_after = _p_value(s_before, r_before), _p_value(s_after, r_after)
    return MembershipCheck(
        attack=name,
        reference=len(references),
        pairs=len(mine),
        percentile_before=float(np.mean(r_before < s_before)),
        percentile_after=float(np.mean(r_after < s_after)),
        p_before=p_before,
        p_after=p_after,
        held=_attack_verdict(p_before, p_after, len(references)),
    )


def _attack_verdict(p_before: float, p_after: float, reference: int) -> bool | None:
    """What the attack shows: True when it found the person before the deletion (p <= ALPHA)
    and not after; False when it still finds them; None (no power: it shows nothing) when it
    did not find them before, or when too few never-members are ranked for p to reach ALPHA.
    A person who stands out whatever the model (an atypical face) is found before and after
    alike: False then means "not shown", which the exact-unlearning check may still settle."""
    if 1 / (reference + 1) > ALPHA or p_before > ALPHA:
        return None
    return p_after > ALPHA


def _holds(pair: Pair, people: set[str]) -> bool:
    return bool({identity_of(pair.image1), identity_of(pair.image2)} & people)


def _p_value(score: float, reference: np.ndarray) -> float:
    return float((1 + np.sum(reference >= score)) / (len(reference) + 1))


def _reference_pairs(
    mine: list[Pair],
    names: list[str],
    by_person: dict[str, list[str]],
    rng: np.random.Generator,
) -> tuple[list[Pair], list[list[Pair]]]:
    """The person's candidate pairs and, per reference person, as many same-person and
    different-person pairs. When too few never-members have photos for as many same-person
    pairs, the person's same-person pairs are cut (seeded) to what `MIN_REFERENCE` of them
    can hold: a mean over fewer pairs spreads wider, so the counts must be equal."""
    same = [p for p in mine if p.label == 1]
    different = [p for p in mine if p.label == 0]
    room = sorted((comb(len(by_person[n]), 2) for n in names), reverse=True)
    if len(room) < MIN_REFERENCE:
        raise FaceBoneError(
            f"the data folder has {len(room)} never-members to rank the deleted person among; "
            f"the check needs at least {2 * MIN_REFERENCE} people who never trained"
        )
    n_same = min(len(same), room[MIN_REFERENCE - 1])
    if n_same < len(same):
        same = [same[i] for i in sorted(rng.choice(len(same), n_same, replace=False))]
    eligible = [n for n in names if comb(len(by_person[n]), 2) >= n_same]
    chosen = [eligible[i] for i in sorted(rng.permutation(len(eligible))[:MAX_REFERENCE])]
    references = []
    for name in chosen:
        photos = by_person[name]
        possible = [(a, b) for i, a in enumerate(photos) for b in photos[i + 1 :]]
        picks = rng.choice(len(possible), n_same, replace=False) if n_same else []
        pairs = [Pair(*possible[i], 1) for i in sorted(picks)]
        strangers = [p for other in chosen if other != name for p in by_person[other]]
        for _ in different:
            mate = strangers[rng.integers(len(strangers))]
            pairs.append(Pair(photos[rng.integers(len(photos))], mate, 0))
        references.append(list(dict.fromkeys(pairs)))
    return same + different, references


def _attacker_pairs(
    names: list[str], by_person: dict[str, list[str]], rng: np.random.Generator
) -> list[Pair]:
    """The attacker's own balanced pairs, of never-members the check does not rank."""
    from facebone.data.lfw import FaceImage
    from facebone.data.pairs import make_pairs

    images = [FaceImage(path, name) for name in names for path in by_person[name]]
    return make_pairs(images, set(names), int(rng.integers(2**31 - 1)), 20)


def _attack_scores(
    system: FRSystem,
    data: TrainingData,
    candidates: list[Pair],
    attacker: list[Pair],
    seed: int,
) -> tuple[str, np.ndarray]:
    """The strongest applicable attack's score of each candidate pair against `system`,
    trained on `data`."""
    from facebone.attacks.base import AttackError
    from facebone.attacks.membership.base import (
        cached_shadow_trainer,
        repeated_query,
        repeating_shadow_trainer,
    )
    from facebone.attacks.membership.parameter import ParameterAttack
    from facebone.attacks.membership.rmia import RMIAAttack
    from facebone.attacks.membership.runner import choose_queries
    from facebone.attacks.system_target import (
        SystemShadowTrainer,
        system_pair_scores,
        system_query_fn,
    )

    params = system.get_params()
    public = list(data.public_pairs) if _uses_public(system) else None
    if system.calibration == "public" and system.attribute_suppression is None:
        # Its training pairs are its public pairs (`training_data`): a shadow calibrated on
        # its own pairs is fitted as the system was on the public pairs.
        params, public = {**params, "calibration": "members"}, None
    pair_scores = system_pair_scores(params, system.embedder_, data.root, public)
    try:
        pair_scores.design()
        attack = ParameterAttack(
            PARAMETER_SHADOWS, PARAMETER_COUNTERFACTUAL, seed, len(data.pairs), pair_scores
        )
    except AttackError:
        attack = RMIAAttack(n_shadows=RMIA_SHADOWS, seed=seed, shadow_size=len(data.pairs))
    system.reset_query_stream(seed)
    target = system_query_fn(system, data.root)
    repeats = choose_queries(target, candidates[:64], None)
    trainer = SystemShadowTrainer(
        params, system.embedder_, data.root, public, None, system.suppressions_
    )
    attack.fit(cached_shadow_trainer(repeating_shadow_trainer(trainer, repeats)), attacker)
    return attack.name, attack.infer(repeated_query(target, repeats), candidates)


def erase_subject(
    gallery: ErasableGallery,
    subject: str,
    training: TrainingData | None,
    model_dir: str | Path,
    keys: Mapping[str, TemplateProtection] | None,
    verify: bool,
    seed: int,
    keep: Callable[[TrainingData], None] | None = None,
) -> ErasureReport:
    """Delete `subject` from `gallery` and from the model in `model_dir` that the gallery's
    system was loaded from (module docstring). `training` is the data the model was trained
    on (`training_data`; None: the gallery alone is cleared, and the report says nothing was
    checked); `keys` are its template-protection keys (None: the loaded system's). `seed`
    seeds the check. `keep` is called with the data the model then records (the remaining
    data, or `training` when no one matched) once the model is saved and before the subject
    leaves the gallery, so that a crash never loses it while the subject can no longer be
    found."""
    from facebone.system.model_dir import read_config, save_system

    system = gallery.system
    system.check_fitted()
    if training is None:
        if verify:
            raise FaceBoneError("verifying an erasure needs the data the model was trained on")
        faces = gallery.delete(subject)
        return ErasureReport(subject, faces, 0, 0, 0, False, None, False, None, None, None)
    config = read_config(model_dir)
    if config["system"] != system.get_params():
        raise FaceBoneError(f"the gallery's system is not the model in {model_dir}")
    recorded_training_data(config, training)  # a wrong file fails before the matching
    people = matched_people(lambda e: gallery.matches(subject, e), system.embedder_, training)
    still_holds = check_training_data(config, training, people)
    original = training if still_holds else None
    remaining = training.without(people)
    retrained = fresh = None
    seconds = None
    if still_holds and people:
        started = time.perf_counter()
        keys = keys if keys is not None else system.protections_
        fresh = retrain(config["system"], system.embedder_, remaining, keys, system.suppressions_)
        seconds = time.perf_counter() - started
        predictor = fresh.predictor_
        dp = {"epsilon": getattr(predictor, "epsilon_", None)}
        dp["delta"] = getattr(predictor, "delta_", None)
        save_system(fresh, model_dir, extra={"dp": dp})
        retrained = fresh
    if keep is not None:
        keep(remaining)
    faces = gallery.delete(subject)
    # A BioHash key drawn by `train` is centred on the training faces; a suppression is
    # fitted on the public faces.
    kept_saw = bool(
        (system.template_protection == "biohash" and people & _people(training.pairs))
        or (
            system.attribute_suppression is not None
            and people & _people(training.public_pairs or ())
        )
    )
    exact = check = held = None
    if verify and retrained is not None:
        if is_calibrated(retrained):
            again = retrain(
                config["system"], system.embedder_, remaining, keys, system.suppressions_
            )
            exact = saved_equals_fresh(model_dir, again)
        check = membership_check(system, retrained, people, original, seed)
        # Equal to a model that never saw the person is the proof; no attack tells two equal
        # models apart, so the attack only illustrates it. Without that proof, the attack
        # decides, and may have no power (None).
        held = exact if exact is not None else check.held
    elif verify and not people:
        held = True  # no trained part saw them (as far as matching finds)
    return ErasureReport(
        subject=subject,
        faces_removed=faces,
        people_matched=len(people),
        pairs_removed=len(training.pairs) - len(remaining.pairs),
        public_pairs_removed=len(training.public_pairs or ()) - len(remaining.public_pairs or ()),
        retrained=retrained is not None,
        retrain_seconds=seconds,
        kept_parts_saw_person=kept_saw,
        exact_unlearning=exact,
        membership=check,
        held=held,
        remaining=remaining,
    )


def _people(pairs: Sequence[Pair]) -> set[str]:
    return {identity_of(p) for pair in pairs for p in pair[:2]}
