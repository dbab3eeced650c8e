"""Membership inference attacks on real LFW sface embeddings.

The target is a deliberately overfitted, undefended nn predictor (60 training pairs, 300 epochs,
no weight decay); shadows are trained the same way on halves of the attacker's own pairs. The
attacks must find its members well above chance, and must be at chance on a sanity split where
"members" and "non-members" are both pairs the target never saw.
"""

import json

import numpy as np
import pytest

from facebone.attacks import AttackError, AttackNotFittedError, create_attack, list_attacks
from facebone.attacks.base import identity_of, pair_identities
from facebone.attacks.embedding_target import (
    embed_pairs,
    embedding_query_fn,
    embedding_shadow_trainer,
)
from facebone.attacks.membership.base import (
    cached_shadow_trainer,
    identity_scores,
    split_by_identity,
)
from facebone.attacks.membership.black_box import BlackBoxAttack
from facebone.attacks.membership.label_only import LabelOnlyAttack
from facebone.attacks.membership.lira import LiRAAttack
from facebone.attacks.membership.metrics import downsample_roc, evaluate_scores, tpr_at_fpr
from facebone.attacks.membership.plot import plot_roc
from facebone.attacks.membership.rule_based import RuleBasedAttack
from facebone.attacks.membership.runner import DEFAULT_ATTACKS, run_membership_attacks
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError
from facebone.experiments.execution import torch_threads
from facebone.predictors import create_predictor

N_MEMBERS = 60
N_ATTACKER = 120  # shadow halves of ~60 pairs, the size of the target's training set
EPOCHS = 300

METRIC_KEYS = {
    "auc",
    "balanced_accuracy",
    "balanced_accuracy_threshold",
    "threshold",
    "advantage",
    "tpr_at_fpr",
    "roc",
    "n_members",
    "n_nonmembers",
    "shadows",
    "queries",
}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # Tiny MLPs run fastest on one thread, and CI machines are often shared.
    with torch_threads(1):
        yield


def overfitting_predictor(seed: int):
    return create_predictor("nn", epochs=EPOCHS, weight_decay=0.0, seed=seed)


@pytest.fixture(scope="module")
def setting(protocol, lfw_embeddings):
    embeddings = lfw_embeddings("sface")
    members = protocol["target_train"][:N_MEMBERS]
    nonmembers = protocol["target_test"]
    predictor = overfitting_predictor(seed=12345).fit(*embed_pairs(embeddings, members))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(nonmembers))
    half = len(nonmembers) // 2
    return {
        "target": embedding_query_fn(predictor, embeddings),
        "shadow_trainer": embedding_shadow_trainer(embeddings, overfitting_predictor),
        "attacker": protocol["attacker"][:N_ATTACKER],
        "members": members,
        "nonmembers": nonmembers,
        # Sanity split: both sides are pairs the target never trained on.
        "sanity_in": [nonmembers[i] for i in order[:half]],
        "sanity_out": [nonmembers[i] for i in order[half:]],
    }


def evaluate(attack, target, inside, outside):
    scores = attack.infer(target, inside + outside)
    truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    return evaluate_scores(truth, scores, attack.threshold_)


@pytest.fixture(scope="module")
def measured(setting):
    """Each attack fitted once, evaluated on the overfitted target and on the sanity split."""
    shadows = cached_shadow_trainer(setting["shadow_trainer"])
    attacks = {
        "blackbox-gb": BlackBoxAttack(model="gb", n_shadows=4),
        "blackbox-rf": BlackBoxAttack(model="rf", n_shadows=4),
        "blackbox-nn": BlackBoxAttack(model="nn", n_shadows=4),
        "rule-based": RuleBasedAttack(),
        "lira": LiRAAttack(n_shadows=8),
        "label-only": LabelOnlyAttack(n_shadows=4),
    }
    results = {}
    for name, attack in attacks.items():
        attack.fit(shadows, setting["attacker"])
        overfit = evaluate(attack, setting["target"], setting["members"], setting["nonmembers"])
        sanity = evaluate(attack, setting["target"], setting["sanity_in"], setting["sanity_out"])
        results[name] = (overfit, sanity)
    return results


def test_overfitted_target_is_detected_above_chance(measured):
    overfit = {name: o for name, (o, _) in measured.items()}
    # Measured at these seeds: LiRA 0.81, black-box gb/rf/nn 0.80-0.82 (chance 0.5).
    assert overfit["lira"]["auc"] > 0.7
    assert overfit["lira"]["tpr_at_fpr"]["0.01"] > 0.02  # measured 0.10 (chance 0.01)
    assert max(overfit[f"blackbox-{m}"]["auc"] for m in ("gb", "rf", "nn")) > 0.7
    for name in ("lira", "blackbox-gb", "blackbox-nn"):
        assert overfit[name]["balanced_accuracy_threshold"] == "shadow"
        assert overfit[name]["balanced_accuracy"] > 0.6, name


def test_attacks_are_at_chance_when_nothing_was_trained_on(measured):
    for name, (_, sanity) in measured.items():
        assert abs(sanity["auc"] - 0.5) < 0.1, (name, sanity["auc"])
        assert abs(sanity["balanced_accuracy"] - 0.5) < 0.1, name


def test_decision_based_attacks_give_few_distinct_scores(setting, measured):
    rule = RuleBasedAttack().fit(setting["shadow_trainer"], setting["attacker"])
    scores = rule.infer(setting["target"], setting["members"])
    assert set(np.unique(scores)) <= {0.0, 1.0}
    roc = measured["label-only"][0]["roc"]
    assert len(roc["fpr"]) <= 7  # six cells at most, plus the (0, 0) corner


@pytest.mark.slow
def test_run_is_json_serialisable_with_every_key(setting):
    result = run_membership_attacks(
        setting["target"],
        setting["shadow_trainer"],
        setting["attacker"],
        setting["members"],
        setting["nonmembers"],
        progress=False,
        n_shadows=16,  # the shape of a result, not the attacks' strength, is under test
    )
    again = json.loads(json.dumps(result))
    assert again["level"] == "pair"
    assert list(again["attacks"]) == list(DEFAULT_ATTACKS)
    assert set(DEFAULT_ATTACKS) == set(list_attacks(family="membership")) - {"parameter"}
    for name, metrics in again["attacks"].items():
        assert set(metrics) == METRIC_KEYS, name
        assert set(metrics["tpr_at_fpr"]) == {"0.01", "0.001"}
        assert len(metrics["roc"]["fpr"]) == len(metrics["roc"]["tpr"]) <= 200
        assert metrics["n_members"] == N_MEMBERS
        assert metrics["n_nonmembers"] == len(setting["nonmembers"])
    assert again["attacks"]["lira"]["auc"] > 0.7
    assert again["attacks"]["lira-online"]["shadows"] == 16
    assert {m["queries"] for m in again["attacks"].values()} == {1}  # answers never vary


@pytest.mark.slow
def test_identity_level_run_is_deterministic(setting):
    def run():
        return run_membership_attacks(
            setting["target"],
            setting["shadow_trainer"],
            setting["attacker"],
            setting["members"],
            setting["nonmembers"],
            level="identity",
            attacks=("blackbox-rf", "blackbox-nn", "lira", "label-only"),
            seed=3,
            progress=False,
        )

    first, second = run(), run()
    assert first == second
    lira = first["attacks"]["lira"]
    people_in = {who for p in setting["members"] for who in pair_identities(p)}
    assert lira["n_members"] == len(people_in)
    assert lira["balanced_accuracy_threshold"] == "shadow-pair"
    assert lira["auc"] > 0.6


def test_bad_inputs_raise_facebone_errors(setting):
    target, trainer = setting["target"], setting["shadow_trainer"]
    attacker, members = setting["attacker"], setting["members"]
    swapped = Pair(members[0].image2, members[0].image1, members[0].label)
    with pytest.raises(FaceBoneError, match="both members and non-members"):
        run_membership_attacks(target, trainer, attacker, members, [swapped], progress=False)
    with pytest.raises(FaceBoneError, match="members is empty"):
        run_membership_attacks(target, trainer, attacker, [], members, progress=False)
    with pytest.raises(FaceBoneError, match=r"unknown attack 'nope'.*lira"):
        run_membership_attacks(
            target, trainer, attacker, members, setting["nonmembers"], attacks=["nope"]
        )
    # Different pairs, but the same people on both sides: fine per pair, wrong per identity.
    with pytest.raises(FaceBoneError, match="people appear in both"):
        run_membership_attacks(
            target,
            trainer,
            attacker,
            members[:30],
            members[30:],
            level="identity",
            progress=False,
        )
    with pytest.raises(FaceBoneError, match="level must be"):
        run_membership_attacks(target, trainer, attacker, members, [], level="person")
    with pytest.raises(FaceBoneError, match="unknown attack"):
        create_attack("nope")
    with pytest.raises(AttackNotFittedError):
        LiRAAttack().infer(target, members)
    with pytest.raises(AttackError, match="model must be one of"):
        BlackBoxAttack(model="svm").fit(trainer, attacker)
    with pytest.raises(AttackError, match="n_shadows"):
        LiRAAttack(n_shadows=1).fit(trainer, attacker)
    fitted = RuleBasedAttack().fit(trainer, attacker)
    with pytest.raises(AttackError, match="one probability per pair"):
        fitted.infer(lambda pairs: np.zeros(len(pairs) + 1), members)


def test_identity_split_keeps_halves_disjoint_and_balanced(setting):
    attacker = setting["attacker"]
    inside, outside = split_by_identity(attacker, np.random.default_rng(7))
    people_in = {who for p in inside for who in pair_identities(p)}
    people_out = {who for p in outside for who in pair_identities(p)}
    assert not people_in & people_out
    for half in (inside, outside):
        labels = [p.label for p in half]
        assert 0.35 < np.mean(labels) < 0.65
    again = split_by_identity(attacker, np.random.default_rng(7))
    assert again == (inside, outside)


def test_identity_scores_average_the_pairs_of_each_person():
    pairs = [
        Pair("Ann/Ann_1.jpg", "Ann/Ann_2.jpg", 1),
        Pair("Ann/Ann_1.jpg", "Bob/Bob_1.jpg", 0),
        Pair("Cid/Cid_1.jpg", "Bob/Bob_1.jpg", 0),
    ]
    scores = identity_scores(pairs, np.array([1.0, 0.5, 0.0]))
    assert scores == {"Ann": 0.75, "Bob": 0.25, "Cid": 0.0}
    assert identity_scores(pairs, np.array([1.0, 0.5, 0.0]), aggregate="max")["Bob"] == 0.5
    assert identity_of("Ann/Ann_1.jpg") == "Ann"


def test_metrics_on_known_scores():
    truth = np.r_[np.ones(100), np.zeros(1000)]
    perfect = evaluate_scores(truth, np.r_[np.ones(100), np.zeros(1000)])
    assert perfect["auc"] == 1.0 and perfect["advantage"] == 1.0
    assert perfect["balanced_accuracy_threshold"] == "oracle"
    assert perfect["tpr_at_fpr"] == {"0.01": 1.0, "0.001": 1.0}
    # 5 members above every non-member, the rest tied with the non-members' bulk.
    scores = np.r_[np.full(5, 3.0), np.zeros(95), np.full(5, 2.0), np.zeros(995)]
    metrics = evaluate_scores(truth, scores, threshold=2.5)
    assert metrics["tpr_at_fpr"]["0.001"] == 0.05  # FPR 0 <= 0.001
    assert metrics["tpr_at_fpr"]["0.01"] == 0.05  # next point is FPR 1.0: not allowed
    assert metrics["balanced_accuracy"] == pytest.approx(0.5 * (0.05 + 1.0))
    assert metrics["balanced_accuracy_threshold"] == "shadow"
    fpr = np.linspace(0, 1, 5000) ** 3
    small_fpr, _ = downsample_roc(fpr, np.sqrt(fpr))
    assert len(small_fpr) <= 200 and small_fpr[0] == 0 and small_fpr[-1] == 1
    assert np.sum(small_fpr < 1e-3) >= 20  # the low-FPR end stays dense
    assert tpr_at_fpr(np.array([0.0, 0.02, 1.0]), np.array([0.1, 0.5, 1.0]), 0.01) == 0.1
    with pytest.raises(AttackError, match="members and non-members"):
        evaluate_scores(np.ones(3), np.zeros(3))


def test_plot_roc_writes_an_image(tmp_path, measured):
    results = {"level": "pair", "attacks": {name: o for name, (o, _) in measured.items()}}
    path = plot_roc(results, tmp_path / "plots" / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["roc.png"]  # no temporary left behind
    with pytest.raises(FaceBoneError, match="no attacks"):
        plot_roc({"attacks": {}}, tmp_path / "empty.png")


WEAK_DIMS = 6
WEAK_MEMBERS = 80


def memorising_predictor(seed: int):
    return create_predictor(
        "nn", epochs=800, hidden=(256, 256), lr=3e-3, weight_decay=0.0, seed=seed
    )


@pytest.mark.slow
def test_decision_based_attacks_find_members_when_decisions_generalise_poorly(
    protocol, lfw_embeddings
):
    """Rule-based and label-only attacks see only decisions, so they can only find members
    whose decisions differ from non-members': a weak embedder (SFace projected on 6 random
    directions) with a memorising MLP is right on all its training pairs and on ~70% of
    unseen ones."""
    projection = np.random.default_rng(0).standard_normal((128, WEAK_DIMS)).astype(np.float32)
    weak = {
        path: (e / np.linalg.norm(e)) @ projection for path, e in lfw_embeddings("sface").items()
    }
    members = protocol["target_train"][:WEAK_MEMBERS]
    nonmembers = protocol["target_test"]
    target = embedding_query_fn(memorising_predictor(seed=7).fit(*embed_pairs(weak, members)), weak)
    shadows = cached_shadow_trainer(embedding_shadow_trainer(weak, memorising_predictor))
    half = len(nonmembers) // 2
    for attack in (RuleBasedAttack(), LabelOnlyAttack(n_shadows=4)):
        attack.fit(shadows, protocol["attacker"][: 2 * WEAK_MEMBERS])
        found = evaluate(attack, target, members, nonmembers)
        sanity = evaluate(attack, target, nonmembers[:half], nonmembers[half:])
        assert found["auc"] > 0.58, (type(attack).__name__, found["auc"])  # measured 0.62-0.65
        assert abs(sanity["auc"] - 0.5) < 0.1, (type(attack).__name__, sanity["auc"])
