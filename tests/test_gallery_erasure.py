"""Erasure on real LFW faces (SFace): the subject's training people are found, the model is
retrained without exactly their pairs and records it, the calibration equals a fresh fit
without them, and a membership attack sees the person before the deletion and not after.

The gallery here is a stand-in built on a real fitted `FRSystem` (its 1:1 decision: the best
calibrated probability against the subject's enrolled faces, at the system's threshold), with
the two methods erasure asks of `gallery.Gallery`; the last test goes through a real one.
"""

import json
from collections import Counter

import numpy as np
import pytest

from facebone.attacks.base import identity_of
from facebone.attacks.membership.parameter import fit_calibrations
from facebone.attacks.system_target import system_pair_scores
from facebone.data.pairs import pair_labels
from facebone.errors import FaceBoneError
from facebone.experiments.regimes import balanced_subset
from facebone.gallery.erasure import (
    ALPHA,
    TrainingData,
    check_training_data,
    erase_subject,
    matched_people,
    recorded_training_data,
    training_data,
)
from facebone.system import FRSystem, load_system, save_system
from facebone.system.fr_system import THRESHOLD, pairs_sha256
from facebone.system.model_dir import read_config

COSINE = {"predictor": "cosine"}
# The leaking regime's nn options (`experiments/regimes.py`): an over-fitted network.
LEAKING_NN = {"predictor": "nn", "predictor_params": {"epochs": 300, "weight_decay": 0.0}}


class StandInGallery:
    """Subjects as the raw embeddings of their enrolled photos, matched by `matcher` (default:
    the deployed `system`)."""

    def __init__(self, system: FRSystem, matcher: FRSystem | None = None) -> None:
        self.system = system
        self.matcher = matcher or system
        self.enrolled: dict[str, np.ndarray] = {}

    def enroll(self, subject: str, embeddings: np.ndarray) -> None:
        self.enrolled[subject] = embeddings

    def matches(self, subject, embeddings):
        faces = self.matcher.protect("sface", self.enrolled[subject])
        rows = self.matcher.protect("sface", embeddings["sface"])
        sources = np.zeros(len(rows), dtype=np.int64)
        best = np.max(
            [
                self.matcher.predictor_.predict_proba(
                    rows, np.repeat(face[None], len(rows), 0), sources
                )
                for face in faces
            ],
            axis=0,
        )
        return best >= THRESHOLD

    def delete(self, subject) -> int:
        if subject not in self.enrolled:
            raise FaceBoneError(f"no subject {subject}")
        return len(self.enrolled.pop(subject))


@pytest.fixture(scope="module")
def sface(sface_embedder):
    return sface_embedder


def people_by_pairs(pairs):
    """The people of `pairs`, most pairs first (ties by name)."""
    counts = Counter(w for p in pairs for w in {identity_of(p.image1), identity_of(p.image2)})
    return sorted(counts, key=lambda w: (-counts[w], w))


def photos_of(person, pairs):
    return sorted({p for pair in pairs for p in pair[:2] if identity_of(p) == person})


def deployed(params, sface, root, pairs, model_dir, person, matcher=None):
    """A system trained on `pairs` and saved to `model_dir`, and a gallery where `person`
    is enrolled (subject "s") with two of their training photos."""
    system = FRSystem(**params).fit(sface, root, pairs)
    save_system(system, model_dir)
    gallery = StandInGallery(system, matcher)
    photos = photos_of(person, pairs)[:2]
    table = sface.dataset(root, photos)["sface"]
    gallery.enroll("s", np.stack([table[p] for p in photos]))
    return gallery


@pytest.fixture(scope="module")
def small(protocol):
    return balanced_subset(protocol["target_train"], 40, np.random.default_rng([0, 101]))


def test_matching_finds_the_training_person_and_no_one_else(sface, lfw_root, protocol, small):
    data = TrainingData(lfw_root, small)
    system = FRSystem(**COSINE).fit(sface, lfw_root, small)
    gallery = StandInGallery(system)
    never = people_by_pairs(protocol["target_test"])[0]  # never a member
    for person in [*people_by_pairs(small)[:3], never]:
        photos = photos_of(person, small + protocol["target_test"])[:2]
        table = sface.dataset(lfw_root, photos)["sface"]
        gallery.enroll(person, np.stack([table[p] for p in photos]))
        found = matched_people(lambda e, who=person: gallery.matches(who, e), sface, data)
        assert found == ({person} if person != never else set()), person


def test_erasure_retrains_without_exactly_their_pairs(sface, lfw_root, small, tmp_path):
    person = people_by_pairs(small)[0]
    model = tmp_path / "model"
    gallery = deployed(COSINE, sface, lfw_root, small, model, person)
    data = TrainingData(lfw_root, small)
    report = erase_subject(gallery, "s", data, model, None, verify=False, seed=0)

    theirs = [p for p in small if person in {identity_of(p.image1), identity_of(p.image2)}]
    assert theirs and report.pairs_removed == len(theirs)
    assert list(report.remaining.pairs) == [p for p in small if p not in theirs]
    assert (report.faces_removed, report.people_matched, report.retrained) == (2, 1, True)
    assert "s" not in gallery.enrolled
    assert report.held is None and report.membership is None  # not verified
    config = read_config(model)
    assert config["training_pairs_sha256"] == pairs_sha256(report.remaining.pairs)
    assert config["n_training_pairs"] == len(small) - len(theirs)
    # The saved calibration is the one fitted on the remaining pairs alone, computed here by
    # another path (the parameter attack's exact shadow fit on public scores).
    remaining = list(report.remaining.pairs)
    scores = system_pair_scores(gallery.system.get_params(), sface, lfw_root)(remaining)
    rows = np.arange(len(remaining))[None]
    slopes, intercepts = fit_calibrations(scores, pair_labels(remaining), rows, l2=1.0)
    saved = load_system(model, sface.cache, progress=False).predictor_
    np.testing.assert_allclose(saved.slopes_, slopes[0], rtol=1e-12)
    np.testing.assert_allclose(saved.intercepts_, intercepts[0], rtol=1e-12)
    assert np.abs(saved.slopes_ - gallery.system.predictor_.slopes_).max() > 1e-6
    # A run interrupted after the save finds the model already without them.
    assert check_training_data(config, data, {person}) is False
    assert check_training_data(config, report.remaining, {person}) is True


def test_training_data_of_another_sha_is_refused(sface, lfw_root, small, tmp_path):
    person = people_by_pairs(small)[0]
    model = tmp_path / "model"
    gallery = deployed(COSINE, sface, lfw_root, small, model, person)
    config_before = (model / "config.json").read_bytes()
    other = [p for p in small if person not in p.image1][:-1]  # one more pair gone
    for pairs in (small[:-1], small[::-1], other):
        with pytest.raises(FaceBoneError, match="SHA-256 differs"):
            erase_subject(gallery, "s", TrainingData(lfw_root, pairs), model, None, False, 0)
    assert "s" in gallery.enrolled  # nothing deleted
    assert (model / "config.json").read_bytes() == config_before
    with pytest.raises(FaceBoneError, match="fitted on none"):
        erase_subject(gallery, "s", TrainingData(lfw_root, small, small), model, None, False, 0)


def test_verified_erasure_of_a_calibrated_system_is_exact(sface, lfw_root, small, tmp_path):
    person = people_by_pairs(small)[0]
    model = tmp_path / "model"
    gallery = deployed(COSINE, sface, lfw_root, small, model, person)
    report = erase_subject(gallery, "s", TrainingData(lfw_root, small), model, None, True, 0)
    assert report.exact_unlearning is True
    check = report.membership
    assert check.attack == "parameter"
    assert check.reference >= 10 and check.pairs == report.pairs_removed
    assert report.held is True  # the exact-unlearning proof decides for a calibration
    assert check.held in (None, check.p_after > ALPHA)
    json.dumps(report.to_dict())  # what the command line prints


@pytest.mark.slow
def test_the_attack_sees_the_person_before_the_deletion_and_not_after(
    sface, lfw_root, protocol, tmp_path
):
    """The leaking regime's over-fitted nn, 20 pairs of which 6 are one person's: RMIA ranks
    the person above every never-member before, and among them after. The gallery matches
    with a cosine system calibrated on all of target_train: the over-fitted network is a poor
    1:1 matcher (with it, 12 people match the subject and are erased with them)."""
    train = protocol["target_train"]
    person = "Vicente_Fox"
    theirs = [p for p in train if p.label == 1 and identity_of(p.image1) == person][:6]
    others = [p for p in train if person not in {identity_of(p.image1), identity_of(p.image2)}]
    pairs = theirs + balanced_subset(others, 14, np.random.default_rng([0, 101]))
    model = tmp_path / "model"
    matcher = FRSystem(**COSINE).fit(sface, lfw_root, train)
    gallery = deployed(LEAKING_NN, sface, lfw_root, pairs, model, person, matcher)
    report = erase_subject(gallery, "s", TrainingData(lfw_root, pairs), model, None, True, 0)
    assert (report.people_matched, report.pairs_removed, report.retrained) == (1, 6, True)
    assert report.exact_unlearning is None  # a retrained network: no calibration to compare
    check = report.membership
    assert check.attack == "rmia" and check.reference >= 10
    assert check.p_before == pytest.approx(1 / (check.reference + 1))
    assert check.p_after > ALPHA and check.held is True and report.held is True


def test_erasure_through_a_real_gallery_keeps_it_bound_to_the_retrained_model(
    sface, lfw_root, small, tmp_path
):
    from facebone.gallery.gallery import Gallery

    person = people_by_pairs(small)[0]
    model = tmp_path / "model"
    save_system(FRSystem(**COSINE).fit(sface, lfw_root, small), model)
    system = load_system(model, sface.cache, progress=False)
    photos = photos_of(person, small)[:2]
    table = sface.dataset(lfw_root, photos)["sface"]
    with Gallery.create(tmp_path / "g.sqlite", system, model) as gallery:
        subject = gallery.enroll_embeddings({"sface": np.stack([table[p] for p in photos])}, photos)
        kept = gallery.enroll_embeddings({"sface": table[photos[0]][None]}, ["other"])
        report = erase_subject(
            gallery, subject, TrainingData(lfw_root, small), model, None, False, 0
        )
    assert (report.faces_removed, report.people_matched, report.retrained) == (2, 1, True)
    retrained = load_system(model, sface.cache, progress=False)
    with Gallery.open(tmp_path / "g.sqlite", retrained, model) as gallery:
        assert [s.id for s in gallery.subjects()] == [kept]


PUBLIC_CKKS = {
    "backbones": ("sface",),
    "predictor": "cosine",
    "calibration": "public",
    "template_protection": "ckks",
}


@pytest.fixture(scope="module")
def public_small(protocol):
    return protocol["attacker"]


@pytest.mark.slow
def test_public_calibration_erasure_looks_in_and_refits_on_the_public_pairs(
    sface, lfw_root, small, public_small, tmp_path
):
    """The recommended deployment's shape: calibrated on public pairs, CKKS templates. Its
    members' pairs trained nothing and are refused; the person is found in the public pairs
    (through encrypted templates) and the model refitted on them without the person."""
    from facebone.gallery.gallery import Gallery

    person = people_by_pairs(public_small)[0]
    model = tmp_path / "model"
    system = FRSystem(**PUBLIC_CKKS).fit(sface, lfw_root, small, public_pairs=public_small)
    save_system(system, model)
    config = read_config(model)
    assert config["training_pairs_sha256"] == pairs_sha256(public_small)
    with pytest.raises(FaceBoneError, match="members' pairs trained nothing"):
        training_data(config, lfw_root, small, public_small)
    with pytest.raises(FaceBoneError, match="public pairs only"):
        training_data(config, lfw_root, None, None)
    data = training_data(config, lfw_root, None, public_small)
    assert len(data._all_pairs()) == len(public_small)  # pairs and public pairs are one list
    assert recorded_training_data(config, data) is True

    loaded = load_system(model, sface.cache, keys=system.protections_, progress=False)
    photos = photos_of(person, public_small)[:2]
    table = sface.dataset(lfw_root, photos)["sface"]
    kept = []
    with Gallery.create(tmp_path / "g.sqlite", loaded, model) as gallery:
        subject = gallery.enroll_embeddings({"sface": np.stack([table[p] for p in photos])}, photos)
        report = erase_subject(gallery, subject, data, model, None, True, 0, kept.append)
        assert gallery.subjects() == []
    theirs = [p for p in public_small if person in {identity_of(p.image1), identity_of(p.image2)}]
    assert (report.people_matched, report.retrained, report.exact_unlearning) == (1, True, True)
    assert report.public_pairs_removed == report.pairs_removed == len(theirs)
    assert kept == [report.remaining]
    remaining = [p for p in public_small if p not in theirs]
    assert list(report.remaining.public_pairs) == remaining
    config = read_config(model)
    assert config["training_pairs_sha256"] == pairs_sha256(remaining)
    assert config["public_pairs_sha256"] == pairs_sha256(remaining)
    # The membership check attacks the calibration the person was in: the public one.
    check = report.membership
    assert check.attack == "parameter" and 0 < check.pairs <= len(theirs)
    assert report.held is True  # the exact-unlearning proof decides for a calibration
    assert check.held in (None, check.p_after > ALPHA)


def test_a_wrong_training_file_is_refused_before_any_matching(sface, lfw_root, small, tmp_path):
    person = people_by_pairs(small)[0]
    model = tmp_path / "model"
    gallery = deployed(COSINE, sface, lfw_root, small, model, person)
    asked = []
    matches = gallery.matches
    gallery.matches = lambda subject, e: asked.append(subject) or matches(subject, e)
    config = read_config(model)
    for pairs in (small[:-1], small[::-1]):  # not more pairs than recorded: no resume
        with pytest.raises(FaceBoneError, match="SHA-256 differs"):
            recorded_training_data(config, TrainingData(lfw_root, pairs))
        with pytest.raises(FaceBoneError, match="SHA-256 differs"):
            erase_subject(gallery, "s", TrainingData(lfw_root, pairs), model, None, False, 0)
    assert asked == [] and "s" in gallery.enrolled
    # More pairs than recorded may be an interrupted erasure's data: matched, then judged.
    assert recorded_training_data(config, TrainingData(lfw_root, small + small[:1])) is False


def test_the_attack_verdict_needs_power_before_it_speaks():
    from facebone.gallery.erasure import _attack_verdict

    assert _attack_verdict(1 / 31, 0.4, 30) is True  # found before, not after
    assert _attack_verdict(1 / 31, 1 / 31, 30) is False  # still found
    assert _attack_verdict(0.5, 0.6, 30) is None  # never found: shows nothing
    assert _attack_verdict(1 / 13, 0.5, 12) is None  # p cannot reach ALPHA with 12 people
