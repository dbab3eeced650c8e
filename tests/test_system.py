"""FR systems trained and evaluated on real LFW pairs, single and multi-backbone."""

import numpy as np
import pytest

from facebone.backbones.iresnet import IResNet, save_weights
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.metrics import verification_metrics
from facebone.system import FRSystem, load_system, save_system
from facebone.system.policies import assign_backbones

POWELL = ["Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg"]
BLAIR = "Tony_Blair/Tony_Blair_0005.jpg"


@pytest.fixture(scope="module")
def embedder(sface_dlib_embedder):
    return sface_dlib_embedder


def _embedder_for(specs, cache_dir):
    return Embedder(specs, EmbeddingCache(cache_dir), progress=False)


def _utility(system, root, pairs):
    """Expected figures over the backbone draws: the same on every run."""
    answers, weights = system.answer_distribution(root, pairs)
    return verification_metrics([p.label for p in pairs], answers, weights=weights)


@pytest.fixture(scope="module")
def single(lfw_root, protocol, cache_dir, lfw_embeddings):
    lfw_embeddings("sface")
    embedder = _embedder_for(["sface"], cache_dir)
    return FRSystem(["sface"]).fit(embedder, lfw_root, protocol["target_train"])


@pytest.fixture(scope="module")
def multi(lfw_root, protocol, embedder):
    system = FRSystem(["sface", "dlib"], mitigation="multi", assign="all", infer="random")
    return system.fit(embedder, lfw_root, protocol["target_train"])


def test_single_backbone_nn_reaches_the_utility_target(single, lfw_root, protocol):
    metrics = _utility(single, lfw_root, protocol["target_test"])
    assert metrics["accuracy"] >= 0.99 and metrics["auc"] >= 0.995, metrics


def test_multi_backbone_nn_reaches_the_utility_target(multi, lfw_root, protocol):
    metrics = _utility(multi, lfw_root, protocol["target_test"])
    assert metrics["accuracy"] >= 0.99 and metrics["auc"] >= 0.995, metrics


def test_random_inference_really_uses_both_backbones(multi, lfw_root, protocol):
    _, answered_by = multi.answer(lfw_root, protocol["target_test"])
    counts = {name: answered_by.count(name) for name in ("sface", "dlib")}
    assert min(counts.values()) > 0.4 * len(answered_by), counts


@pytest.mark.parametrize("predictor", ["cosine", "euclidean", "chi-square", "bhattacharyya"])
def test_distance_predictors_work_in_the_multi_system(predictor, lfw_root, protocol, embedder):
    system = FRSystem(["sface", "dlib"], predictor=predictor, mitigation="multi")
    system.fit(embedder, lfw_root, protocol["target_train"])
    assert _utility(system, lfw_root, protocol["target_test"])["accuracy"] >= 0.98


def test_verify_real_photos(single, multi, lfw_root):
    for system in (single, multi):
        same = system.verify(lfw_root / POWELL[0], lfw_root / POWELL[1])
        different = system.verify(lfw_root / POWELL[0], lfw_root / BLAIR)
        assert same.same and same.probability > 0.5
        assert not different.same and different.probability < 0.5
        assert same.backbone in system.backbones


def test_ensemble_and_fixed_inference(lfw_root, protocol, embedder):
    pairs = protocol["target_test"][:50]
    ensemble = FRSystem(["sface", "dlib"], mitigation="multi", infer="ensemble")
    ensemble.fit(embedder, lfw_root, protocol["target_train"])
    probabilities, answered_by = ensemble.answer(lfw_root, pairs)
    assert set(answered_by) == {"ensemble"}
    fixed = FRSystem(["sface", "dlib"], mitigation="multi", infer="fixed", fixed_backbone="dlib")
    fixed.fit(embedder, lfw_root, protocol["target_train"])
    assert set(fixed.answer(lfw_root, pairs)[1]) == {"dlib"}
    assert not np.allclose(probabilities, fixed.predict_proba(lfw_root, pairs))


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(lfw_root, protocol, embedder):
    def probabilities(seed):
        system = FRSystem(["sface", "dlib"], mitigation="multi", assign="round-robin", seed=seed)
        system.fit(embedder, lfw_root, protocol["target_train"])
        system.reset_query_stream(seed)  # experiments seed the per-query draws too
        return system.predict_proba(lfw_root, protocol["target_test"])

    np.testing.assert_array_equal(probabilities(4), probabilities(4))
    assert not np.array_equal(probabilities(4), probabilities(5))


def test_deployed_draws_differ_between_two_fits_of_one_seed(lfw_root, protocol, embedder):
    def backbones():
        system = FRSystem(["sface", "dlib"], mitigation="multi", seed=4)
        system.fit(embedder, lfw_root, protocol["target_train"][:60])
        return system.answer(lfw_root, protocol["target_test"])[1]

    # Unseeded draws come from the OS: 628 draws agreeing twice by chance is impossible.
    assert backbones() != backbones()


def test_save_and_load_answer_identically(multi, lfw_root, protocol, tmp_path, cache_dir):
    save_system(multi, tmp_path / "model")
    loaded = load_system(tmp_path / "model", EmbeddingCache(cache_dir), progress=False)
    # Deployed draws come from the OS; the same seed on both makes the answers comparable.
    loaded.reset_query_stream(7)
    multi.reset_query_stream(7)
    pairs = protocol["target_test"]
    np.testing.assert_array_equal(
        loaded.predict_proba(lfw_root, pairs), multi.predict_proba(lfw_root, pairs)
    )
    loaded.embedder_.close()


def test_saving_over_a_model_replaces_it_whole(single, tmp_path):
    save_system(single, tmp_path / "model")
    save_system(single, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "predictor.safetensors",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FaceBoneError, match="did not write"):
        save_system(single, tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_damaged_model_directories(single, tmp_path, cache_dir):
    cache = EmbeddingCache(cache_dir)
    with pytest.raises(FaceBoneError, match="does not exist"):
        load_system(tmp_path / "missing", cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceBoneError, match="not a FaceBone model directory"):
        load_system(tmp_path / "empty", cache)
    save_system(single, tmp_path / "model")
    weights = tmp_path / "model" / "predictor.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(FaceBoneError, match="damaged"):
        load_system(tmp_path / "model", cache)
    save_system(single, tmp_path / "model2")
    (tmp_path / "model2" / "config.json").write_text("{not json")
    with pytest.raises(FaceBoneError, match="damaged"):
        load_system(tmp_path / "model2", cache)


@pytest.mark.slow
def test_backbones_of_different_sizes_work_together(lfw_root, protocol, cache_dir, tmp_path):
    weights = tmp_path / "r18.safetensors"
    save_weights(IResNet(18).eval(), weights)
    specs = ["sface", f"iresnet18:{weights}"]
    embedder = _embedder_for(specs, cache_dir)
    train, test = protocol["target_train"][:60], protocol["target_test"][:40]
    system = FRSystem(specs, mitigation="multi", infer="fixed", fixed_backbone="sface")
    system.fit(embedder, lfw_root, train)
    assert system.embedding_dim_ == 512
    assert _utility(system, lfw_root, test)["accuracy"] >= 0.9


def test_option_errors(lfw_root, protocol, embedder):
    with pytest.raises(FaceBoneError, match="uses one backbone"):
        FRSystem(["sface", "dlib"]).fit(embedder, lfw_root, protocol["target_train"])
    with pytest.raises(FaceBoneError, match="unknown inference policy"):
        FRSystem(["sface", "dlib"], mitigation="multi", infer="vote").fit(
            embedder, lfw_root, protocol["target_train"]
        )
    with pytest.raises(FaceBoneError, match="not trained yet"):
        FRSystem(["sface"]).predict_proba(lfw_root, protocol["target_test"])


def test_assignment_policies():
    rng = np.random.default_rng(0)
    rows, sources = assign_backbones(7, 3, "round-robin", rng)
    assert rows.tolist() == list(range(7))
    assert sorted(sources[:3].tolist()) == [0, 1, 2]
    assert sources[3:6].tolist() == sources[:3].tolist()
    rows, sources = assign_backbones(2, 3, "all", rng)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1] and sources.tolist() == [0, 1, 2, 0, 1, 2]
    _, sources = assign_backbones(1000, 2, "random", rng)
    assert 400 < sources.sum() < 600


def test_expected_figures_are_the_mean_over_backbone_draws(multi, lfw_root, protocol):
    """`answer_distribution` weighs each backbone's answers by its probability: accuracy is
    the mean of the backbones' accuracies, and AUC the mean AUC over random draws."""
    from sklearn.metrics import roc_auc_score

    test = protocol["target_test"]
    labels = np.array([p.label for p in test])
    answers, weights = multi.answer_distribution(lfw_root, test)
    assert answers.shape == (2, len(test)) and weights.tolist() == [0.5, 0.5]
    expected = _utility(multi, lfw_root, test)
    assert expected == _utility(multi, lfw_root, test)  # no draw: the same every time
    per_backbone = [((row >= 0.5) == labels).mean() for row in answers]
    assert expected["accuracy"] == pytest.approx(np.mean(per_backbone), abs=1e-12)
    rng = np.random.default_rng(0)
    drawn = [
        roc_auc_score(labels, answers[rng.integers(2, size=len(test)), np.arange(len(test))])
        for _ in range(400)
    ]
    # The mean of 400 draws lies within 4 standard errors of the expectation.
    assert abs(np.mean(drawn) - expected["auc"]) < 4 * np.std(drawn) / np.sqrt(400) + 1e-9
