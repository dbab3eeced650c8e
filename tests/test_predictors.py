"""Predictors on synthetic embeddings: identities are random unit centres plus noise.

Source 0 is a 128-wide backbone whose different-person pairs have cosine near 0. Source 1 is a
64-wide backbone, zero-padded to 128, at another scale, whose identities share a common
direction (different-person cosine near 0.6): one global threshold fails on it, a per-source
calibration does not. Real-face tests live in the system tests.
"""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from sklearn.metrics import roc_auc_score

from facebone.errors import FaceBoneError
from facebone.params import InvalidParameterError
from facebone.predictors import (
    InvalidPairsError,
    NotFittedError,
    PredictorStateError,
    create_predictor,
    list_predictors,
    pair_features,
    predictor_from_state,
)
from facebone.predictors.nn import default_delta

NAMES = ["cosine", "euclidean", "chi-square", "bhattacharyya", "nn"]  # definition order
DISTANCE_NAMES = [n for n in NAMES if n != "nn"]
WIDTH = 128


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # Tiny MLPs run fastest on one thread, and CI machines are often shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_pairs(rng, *, n_pairs, n_ids, dim, noise, shared=0.0, scale=1.0, pad_to=WIDTH):
    """Half same-person pairs; `shared` mixes a common direction into every identity centre."""
    common = rng.standard_normal(dim)
    centres = shared * common / np.linalg.norm(common) + rng.standard_normal(
        (n_ids, dim)
    ) / np.sqrt(dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = (np.arange(n_pairs) % 2).astype(np.int64)
    i = rng.integers(0, n_ids, n_pairs)
    j = np.where(y == 1, i, (i + rng.integers(1, n_ids, n_pairs)) % n_ids)

    def embed(ids):
        e = centres[ids] + noise * rng.standard_normal((n_pairs, dim)) / np.sqrt(dim)
        return np.pad(scale * e, ((0, 0), (0, pad_to - dim))).astype(np.float32)

    return embed(i), embed(j), y


def make_two_sources(seed, n_per_source):
    rng = np.random.default_rng(seed)
    a = make_pairs(rng, n_pairs=n_per_source, n_ids=100, dim=WIDTH, noise=0.9)
    b = make_pairs(rng, n_pairs=n_per_source, n_ids=100, dim=64, noise=0.35, shared=1.2, scale=7.0)
    e1, e2, y = (np.concatenate([u, v]) for u, v in zip(a, b, strict=True))
    source = np.repeat([0, 1], n_per_source)
    return e1, e2, y, source


@pytest.fixture(scope="module")
def train():
    return make_two_sources(seed=1, n_per_source=600)


@pytest.fixture(scope="module")
def test():
    return make_two_sources(seed=2, n_per_source=400)


@pytest.fixture(scope="module")
def fitted(train):
    e1, e2, y, source = train
    return {name: create_predictor(name).fit(e1, e2, y, source) for name in NAMES}


# ---- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_predictor():
    assert list_predictors() == NAMES
    assert list_predictors("c*") == ["cosine", "chi-square"]


def test_unknown_name_is_a_user_error_listing_valid_names():
    with pytest.raises(FaceBoneError, match="cosine, euclidean"):
        create_predictor("arcface-distance")


def test_constructor_only_stores_arguments():
    p = create_predictor("nn", hidden=(32, 16), dp_epsilon=3.0)
    assert p.get_params()["hidden"] == (32, 16)
    assert not hasattr(p, "model_")


# ---- learning ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_separates_same_from_different_on_held_out_pairs(fitted, test, name):
    e1, e2, y, source = test
    proba = fitted[name].predict_proba(e1, e2, source)
    assert proba.shape == (len(y),) and proba.dtype == np.float64
    assert np.all((proba >= 0) & (proba <= 1))
    for s in (0, 1):
        mask = source == s
        assert roc_auc_score(y[mask], proba[mask]) > 0.95, f"source {s}"
    assert (fitted[name].predict(e1, e2, source) == y).mean() > 0.9


def test_predict_applies_the_threshold(fitted, test):
    e1, e2, _, source = test
    p = fitted["cosine"]
    proba = p.predict_proba(e1, e2, source)
    for t in (0.2, 0.5, 0.9):
        np.testing.assert_array_equal(p.predict(e1, e2, source, threshold=t), proba >= t)


def test_per_source_calibration_beats_one_global_threshold(train, test):
    e1, e2, y, source = train
    per_source = create_predictor("cosine").fit(e1, e2, y, source)
    pooled = create_predictor("cosine").fit(e1, e2, y)
    t1, t2, ty, tsource = test
    assert per_source.thresholds_[1] - per_source.thresholds_[0] > 0.2
    acc_per_source = (per_source.predict(t1, t2, tsource) == ty).mean()
    acc_pooled = (pooled.predict(t1, t2) == ty).mean()
    assert acc_per_source > 0.95
    assert acc_per_source - acc_pooled > 0.05


@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_threshold_is_where_probability_is_one_half(fitted, name):
    p = fitted[name]
    for i, s in enumerate(p.sources_):
        assert p.slopes_[i] * p.thresholds_[s] + p.intercepts_[i] == pytest.approx(0, abs=1e-9)


def test_nn_overfits_a_few_pairs_given_many_epochs():
    e1, e2, y = make_pairs(np.random.default_rng(3), n_pairs=16, n_ids=8, dim=32, noise=1.5)
    p = create_predictor("nn", hidden=(64,), epochs=400, lr=1e-2, batch_size=16, weight_decay=0)
    p.fit(e1, e2, y)
    assert len(p.train_losses_) == 400
    assert p.train_losses_[-1] < 0.01 < p.train_losses_[0]
    assert p.epsilon_ is None and p.delta_ is None


def test_nn_dp_sgd_respects_budget_and_still_learns():
    rng = np.random.default_rng(4)
    e1, e2, y = make_pairs(rng, n_pairs=1000, n_ids=100, dim=32, noise=0.5, pad_to=32)
    t1, t2, ty = make_pairs(rng, n_pairs=400, n_ids=100, dim=32, noise=0.5, pad_to=32)
    p = create_predictor("nn", hidden=(32,), epochs=15, lr=1e-2, dp_epsilon=2.0, seed=1)
    p.fit(e1, e2, y)
    assert 0 < p.epsilon_ <= 2.0
    assert p.delta_ == default_delta(1000) == 1e-5
    assert p.noise_multiplier_ > 0
    assert roc_auc_score(ty, p.predict_proba(t1, t2)) > 0.8


def test_default_delta_is_below_one_over_n():
    assert default_delta(1000) == 1e-5
    assert default_delta(250_000) == 1e-6


def test_nn_is_deterministic_for_a_seed_and_leaves_global_rng_alone(train, test):
    e1, e2, y, source = train
    t1, t2, _, tsource = test

    def proba(seed):
        p = create_predictor("nn", hidden=(16,), epochs=3, dropout=0.1, seed=seed)
        return p.fit(e1, e2, y, source).predict_proba(t1, t2, tsource)

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = proba(0)
    assert torch.equal(torch.rand(3), expected_next)
    np.testing.assert_array_equal(first, proba(0))
    assert not np.array_equal(first, proba(1))


# ---- input handling ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_is_a_clear_error(name, test):
    e1, e2, _, _ = test
    p = create_predictor(name)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        p.predict_proba(e1, e2)
    with pytest.raises(NotFittedError):
        p.predict(e1, e2)
    with pytest.raises(NotFittedError):
        p.get_state()


@pytest.mark.parametrize("name", NAMES)
def test_unknown_source_is_a_clear_error(fitted, test, name):
    e1, e2, _, source = test
    with pytest.raises(InvalidPairsError, match=r"never seen in fit.*\[0, 1\]"):
        fitted[name].predict_proba(e1, e2, np.full_like(source, 2))


@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_distance_scores_ignore_zero_padding_and_scale(fitted, test, name):
    e1, e2, _, source = test
    proba = fitted[name].predict_proba(e1, e2, source)
    padded = [np.pad(e, ((0, 0), (0, 40))) for e in (e1, e2)]
    np.testing.assert_allclose(fitted[name].predict_proba(*padded, source), proba, atol=1e-12)
    np.testing.assert_allclose(
        fitted[name].predict_proba(3.0 * e1, 0.5 * e2, source), proba, atol=1e-6
    )


def test_nn_features_are_symmetric_and_padding_safe():
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((6, 64)) for _ in range(2))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    src = np.array([0, 1, 0, 1, 0, 1])
    features = pair_features(a, b, src, 2)
    np.testing.assert_array_equal(features, pair_features(b, a, src, 2))
    pad = [np.pad(e, ((0, 0), (0, 64))) for e in (a, b)]
    padded = pair_features(*pad, src, 2)
    np.testing.assert_array_equal(padded[:, :64], features[:, :64])  # |a-b|
    np.testing.assert_array_equal(padded[:, 128:192], features[:, 64:128])  # a*b
    np.testing.assert_array_equal(padded[:, 64:128], 0)
    np.testing.assert_array_equal(padded[:, 192:256], 0)
    np.testing.assert_allclose(padded[:, 256:], features[:, 128:], atol=1e-7)  # cos, one-hot


def test_nn_rejects_embeddings_of_another_width(fitted, test):
    e1, e2, _, source = test
    with pytest.raises(InvalidPairsError, match="128-wide"):
        fitted["nn"].predict_proba(e1[:, :64], e2[:, :64], source)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e1, e2, y, s: (e1[0], e2, y, s), "2-D array"),
        (lambda e1, e2, y, s: (e1, e2[:-1], y, s), "same shape"),
        (lambda e1, e2, y, s: (e1 * np.nan, e2, y, s), "NaN"),
        (lambda e1, e2, y, s: (e1, e2, y[:-1], s), "y must have shape"),
        (lambda e1, e2, y, s: (e1, e2, y + 1, s), "1 \\(same person\\) or 0"),
        (lambda e1, e2, y, s: (e1, e2, y, s[:-1]), "source must have shape"),
        (lambda e1, e2, y, s: (e1, e2, y, s - 1), "non-negative"),
        (lambda e1, e2, y, s: (e1, e2, y, s + 0.5), "integers"),
    ],
)
def test_bad_inputs_raise_a_sentence(train, change, message):
    e1, e2, y, source = change(*train)
    with pytest.raises(InvalidPairsError, match=message) as info:
        create_predictor("cosine").fit(e1, e2, y, source)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FaceBoneError)


def test_fit_needs_both_labels_for_every_source(train):
    e1, e2, y, source = train
    keep = (source == 0) | (y == 1)
    with pytest.raises(InvalidPairsError, match="Source 1 has only same-person pairs"):
        create_predictor("euclidean").fit(e1[keep], e2[keep], y[keep], source[keep])


def test_bad_nn_option_is_reported_at_fit(train):
    e1, e2, y, source = train
    with pytest.raises(InvalidParameterError, match="dropout"):
        create_predictor("nn", dropout=1.5).fit(e1, e2, y, source)


# ---- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_through_json_and_safetensors(fitted, test, tmp_path, name):
    e1, e2, _, source = test
    config, tensors = fitted[name].get_state()
    (tmp_path / "config.json").write_text(json.dumps(config))
    if tensors:
        save_file(tensors, str(tmp_path / "weights.safetensors"))
        tensors = load_file(str(tmp_path / "weights.safetensors"))
    again = predictor_from_state(json.loads((tmp_path / "config.json").read_text()), tensors)
    assert type(again) is type(fitted[name])
    assert again.get_params() == fitted[name].get_params()
    np.testing.assert_array_equal(
        again.predict_proba(e1, e2, source), fitted[name].predict_proba(e1, e2, source)
    )
    if name == "nn":
        assert again.train_losses_ == fitted[name].train_losses_
    else:
        assert again.thresholds_ == fitted[name].thresholds_


def test_damaged_state_is_a_clear_error(fitted):
    config, tensors = fitted["nn"].get_state()
    some_key = next(iter(tensors))
    cases = [
        ({**config, "name": "resnet"}, tensors, "unknown predictor"),
        ({**config, "format": 99}, tensors, "format"),
        ({k: v for k, v in config.items() if k != "fitted"}, tensors, "damaged"),
        (config, {k: v for k, v in tensors.items() if k != some_key}, "damaged"),
        (config, {**tensors, some_key: tensors[some_key][:1]}, "damaged"),
        ({**config, "n_features_in": 64}, tensors, "damaged"),
    ]
    for bad_config, bad_tensors, message in cases:
        with pytest.raises(PredictorStateError, match=message):
            predictor_from_state(bad_config, bad_tensors)
    cosine_config, _ = fitted["cosine"].get_state()
    with pytest.raises(PredictorStateError, match="damaged"):
        predictor_from_state({**cosine_config, "sources": [0, 1, 2]}, {})
    with pytest.raises(PredictorStateError, match="not 'cosine'"):
        type(fitted["cosine"]).from_state({**cosine_config, "name": "euclidean"}, {})


def test_failed_fit_leaves_the_predictor_unfitted(train):
    e1, e2, y, source = train
    p = create_predictor("nn", hidden=(8,), epochs=1).fit(e1, e2, y, source)
    p.hidden = 128  # not a sequence of widths
    with pytest.raises(InvalidParameterError, match="hidden"):
        p.fit(e1, e2, y, source)
    with pytest.raises(NotFittedError):
        p.predict_proba(e1, e2, source)
