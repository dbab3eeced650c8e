"""The parameter attack and the member-free calibration, on real LFW faces (SFace + dlib).

The attack recovers a calibrated system's numbers from its answers, fits exact shadows with the
predictor's own code, and reads membership from the numbers; it must find the members of
over-fitted calibrations (20 training pairs) and be at chance on pairs the targets never saw.
A calibration fitted on public pairs must be the same whatever the members are, which leaves
the attack nothing to read.
"""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facebone.attacks import AttackError, create_attack
from facebone.attacks.membership.parameter import ParameterAttack, fit_calibrations
from facebone.attacks.system_target import system_pair_scores, system_query_fn
from facebone.cli import main
from facebone.cli.common import parse_attack_names
from facebone.data.pairs import pair_labels
from facebone.errors import FaceBoneError
from facebone.experiments import create_defense
from facebone.experiments.evaluation import AttackPlan, attack_target, train_target
from facebone.experiments.regimes import balanced_subset
from facebone.system import FRSystem

FUSION = create_defense("cosine-fusion").system_params({}, seed=0)
PUBLIC = create_defense("cosine-fusion-public").system_params({}, seed=0)
# Answers through SFace only: one answering backbone, the closed-form extraction.
FIXED = {**FUSION, "infer": "fixed", "fixed_backbone": "sface"}
N_TINY = 20  # an over-fitted calibration: 20 training pairs
N_TARGETS = 24  # tiny targets the over-fitting test pools


def draw(pairs, n, *seed):
    return balanced_subset(pairs, n, np.random.default_rng(list(seed)))


def no_shadows(pairs, seed):
    raise AssertionError("the parameter attack fits its shadows itself, on cached scores")


def null_auc_sd(n_in: int, n_out: int) -> float:
    """Standard deviation of the AUC of random scores (Mann-Whitney)."""
    return float(np.sqrt((n_in + n_out + 1) / (12 * n_in * n_out)))


@pytest.fixture(scope="module")
def attacker(protocol):
    return draw(protocol["attacker"], 200, 1)


@pytest.mark.parametrize(("params", "answering"), [(FUSION, [0, 1]), (FIXED, [0])])
def test_extraction_recovers_the_calibration_from_answers(
    params, answering, sface_dlib_embedder, lfw_root, protocol, attacker
):
    system = FRSystem(**params).fit(
        sface_dlib_embedder, lfw_root, draw(protocol["target_train"], 100, 0)
    )
    attack = ParameterAttack(
        n_shadows=8,
        n_counterfactual=2,
        pair_scores=system_pair_scores(params, sface_dlib_embedder, lfw_root),
    ).fit(no_shadows, attacker)
    attack.infer(system_query_fn(system, lfw_root), protocol["target_test"][:40])
    predictor = system.predictor_
    truth = np.stack([predictor.slopes_[answering], predictor.intercepts_[answering]], axis=1)
    assert attack.calibration_.shape == (len(answering), 2)
    assert np.abs(attack.calibration_ - truth).max() <= 1e-8
    assert attack.extraction_residual_ < 1e-12
    # The attacker's own calibration, its starting point, is far from the target's numbers.
    own = np.stack(attack.own_calibration_, axis=1)
    assert np.abs(own - truth).max() > 1e-3 * np.abs(truth).max()


def test_fast_shadow_fit_equals_the_real_system_fit(sface_dlib_embedder, lfw_root, protocol):
    pool = protocol["target_train"]
    scores = system_pair_scores(FUSION, sface_dlib_embedder, lfw_root)(pool)
    index = {pair: i for i, pair in enumerate(pool)}
    draws = [draw(pool, size, seed) for seed, size in ((0, 20), (1, 40), (2, 100))]
    for pairs in draws:
        rows = np.array([[index[p] for p in pairs]])
        slopes, intercepts = fit_calibrations(scores, pair_labels(pool), rows, l2=1.0)
        fitted = FRSystem(**FUSION).fit(sface_dlib_embedder, lfw_root, pairs).predictor_
        np.testing.assert_array_equal(slopes[0], fitted.slopes_)
        np.testing.assert_array_equal(intercepts[0], fitted.intercepts_)


@pytest.mark.slow
def test_overfitted_calibrations_leak_their_members_and_never_trained_pairs_do_not(
    sface_dlib_embedder, lfw_root, protocol
):
    """24 targets, each calibrated on 20 pairs; candidates are its members, 20 pairs from the
    same split it never saw (controls) and 150 test pairs. Each AUC is against the test pairs;
    the band is three null standard deviations of the mean of 24 such AUCs."""
    pair_scores = system_pair_scores(FUSION, sface_dlib_embedder, lfw_root)
    attacker = draw(protocol["attacker"], 2 * N_TINY, 1)
    nonmembers = draw(protocol["target_test"], 150, 2)
    truth = np.r_[np.ones(N_TINY), np.zeros(len(nonmembers))]
    members_auc, controls_auc = [], []
    for target in range(N_TARGETS):
        both = draw(protocol["target_train"], 2 * N_TINY, target, 5)
        members, controls = both[::2], both[1::2]
        system = FRSystem(**FUSION).fit(sface_dlib_embedder, lfw_root, members)
        attack = ParameterAttack(
            n_shadows=512,
            n_counterfactual=32,
            seed=target,
            shadow_size=N_TINY,
            pair_scores=pair_scores,
        ).fit(no_shadows, attacker)
        scores = attack.infer(system_query_fn(system, lfw_root), members + controls + nonmembers)
        rest = scores[2 * N_TINY :]
        members_auc.append(roc_auc_score(truth, np.r_[scores[:N_TINY], rest]))
        controls_auc.append(roc_auc_score(truth, np.r_[scores[N_TINY : 2 * N_TINY], rest]))
    band = 3 * null_auc_sd(N_TINY, len(nonmembers)) / np.sqrt(N_TARGETS)
    assert np.mean(members_auc) > 0.5 + band, members_auc
    assert abs(np.mean(controls_auc) - 0.5) < band, controls_auc


def test_member_free_calibration_is_the_same_whatever_the_members(
    sface_dlib_embedder, lfw_root, protocol, attacker
):
    first, second = (draw(protocol["target_train"], 100, seed) for seed in (0, 1))
    assert set(first) != set(second)
    fitted = [
        FRSystem(**PUBLIC).fit(sface_dlib_embedder, lfw_root, members, public_pairs=attacker)
        for members in (first, second)
    ]
    for name in ("slopes_", "intercepts_"):
        np.testing.assert_array_equal(
            getattr(fitted[0].predictor_, name), getattr(fitted[1].predictor_, name)
        )
    on_members = FRSystem(**FUSION).fit(sface_dlib_embedder, lfw_root, first).predictor_
    assert np.abs(on_members.slopes_ - fitted[0].predictor_.slopes_).max() > 1e-3
    attack = ParameterAttack(
        n_shadows=64,
        n_counterfactual=8,
        shadow_size=100,
        pair_scores=system_pair_scores(PUBLIC, sface_dlib_embedder, lfw_root, attacker),
    ).fit(no_shadows, attacker)
    scores = attack.infer(system_query_fn(fitted[0], lfw_root), first + protocol["target_test"])
    assert np.all(scores == 0.0)  # the numbers hold nothing of the members to read


def test_public_calibration_needs_public_pairs_and_a_distance_predictor(
    sface_dlib_embedder, lfw_root, protocol, attacker
):
    members = draw(protocol["target_train"], 40, 0)
    with pytest.raises(FaceBoneError, match="calibration 'public' needs public_pairs"):
        FRSystem(**PUBLIC).fit(sface_dlib_embedder, lfw_root, members)
    with pytest.raises(FaceBoneError, match="public_pairs were given"):
        FRSystem(**FUSION).fit(sface_dlib_embedder, lfw_root, members, public_pairs=attacker)
    nn = {**PUBLIC, "predictor": "nn"}
    with pytest.raises(FaceBoneError, match="calibration 'public' is for distance predictors"):
        FRSystem(**nn).fit(sface_dlib_embedder, lfw_root, members, public_pairs=attacker)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"predictor": "nn"}, "'nn' predictor is not a calibrated distance"),
        ({"infer": "random"}, "backbone drawn per query"),
        ({"assign": "round-robin"}, "round-robin share of the pairs"),
    ],
)
def test_the_attack_refuses_systems_it_cannot_read(
    change, reason, sface_dlib_embedder, lfw_root, attacker
):
    params = {**FUSION, **change}
    attack = create_attack("parameter")
    with pytest.raises(AttackError, match="needs the target's per-backbone pair scores"):
        attack.fit(no_shadows, attacker)
    attack.pair_scores = system_pair_scores(params, sface_dlib_embedder, lfw_root)
    with pytest.raises(AttackError, match=f"this system is refused: .*{reason}"):
        attack.fit(no_shadows, attacker)


def test_the_study_path_runs_it_by_name_and_the_public_calibration_is_at_chance(
    sface_dlib_embedder, lfw_root, protocol
):
    training = draw(protocol["target_train"], 100, 0)
    attacker = draw(protocol["attacker"], 200, 1)
    test = protocol["target_test"]
    plan = AttackPlan(("parameter",), n_shadows=256, levels=("pair", "identity"))
    results = {}
    for name in ("cosine-fusion", "cosine-fusion-public"):
        params = create_defense(name).system_params({}, seed=0)
        target = train_target(params, sface_dlib_embedder, lfw_root, training, test, attacker, 0)
        assert target.utility["accuracy"] >= 0.99, name
        results[name], _ = attack_target(
            target, sface_dlib_embedder, lfw_root, attacker, training, test, plan, 0
        )
    public = results["cosine-fusion-public"]
    for level in ("pair", "identity"):
        assert public[level]["parameter"]["auc"] == 0.5
        assert public[level]["parameter"]["shadows"] == 256
    assert results["cosine-fusion"]["pair"]["parameter"]["auc"] != 0.5


def test_the_command_line_runs_it_by_name_and_refuses_protected_templates(
    sface_cosine_models, lfw_root, cache_dir, capsys
):
    """`all` keeps to the black-box attacks; a protected model's keyed templates cannot be
    scored by the attacker, so the parameter attack refuses it in one line."""
    models = sface_cosine_models
    argv = ["attack", "membership", "--json", "--data", str(lfw_root), "--cache", str(cache_dir)]
    argv += ["--nonmembers", str(models / "target_test.csv")]
    argv += ["--attacker", str(models / "attacker.csv"), "--members"]
    protected = ["--model", str(models / "protected"), "--key-file", str(models / "sface.key")]
    code = main([*argv, str(models / "target_train.csv"), *protected, "--attacks", "parameter"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "this system is refused: its biohash templates need a secret key" in err
    assert "parameter" not in parse_attack_names("all")
    assert "parameter" in parse_attack_names("rule-based,parameter")
