"""CKKS-encrypted templates on real LFW embeddings: matching, the system, the stolen store, keys."""

import io
import json
import stat

import numpy as np
import pytest
import tenseal as ts
from sklearn.metrics import roc_auc_score

from byte_search import found_near
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import create_defense
from facebone.protection import create_protection, load_key, save_keys
from facebone.protection.ckks import CKKSKey, EncryptedTemplates
from facebone.system import FRSystem, load_system, save_system

# CKKS at scale 2^28 errs by about 5e-6 per score (largest 4e-5 over 10,000): 1e-4 is 20
# standard deviations out.
TOLERANCE = 1e-4


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def key() -> CKKSKey:
    return create_protection("ckks", dim_in=128).fit()


@pytest.fixture(scope="module")
def test_pairs(protocol, lfw_embeddings):
    """(e1, e2, labels): SFace embeddings of the target_test pairs."""
    table = lfw_embeddings("sface")
    pairs = protocol["target_test"]
    e1 = np.stack([table[p.image1] for p in pairs])
    e2 = np.stack([table[p.image2] for p in pairs])
    return e1, e2, np.array([p.label for p in pairs])


def test_one_encrypted_pair_scores_its_plain_cosine(key, test_pairs):
    e1, e2, labels = test_pairs
    for i in (int(np.argmax(labels)), int(np.argmin(labels))):  # a same and a different pair
        score = key.decrypt_scores(key.encrypt(e1[i : i + 1]).match(e2[i]))
        assert score.shape == (1,)
        assert abs(score[0] - _unit(e1[i]) @ _unit(e2[i])) < TOLERANCE


def test_packed_scores_equal_plain_scores_over_two_blocks(key, lfw_embeddings):
    """Every LFW face through SFace and through dlib: 4,114 templates, one full block of 4,096
    and a second of 18."""
    gallery = np.concatenate(
        [np.stack(list(lfw_embeddings(name).values())) for name in ("sface", "dlib")]
    )
    assert len(gallery) > 4096
    store = key.encrypt(gallery)
    assert [len(block) for block in store.blocks] == [128, 128]
    probe = gallery[7]
    searched = key.decrypt_scores(store.match(probe))
    assert np.max(np.abs(searched - _unit(gallery) @ _unit(probe))) < TOLERANCE
    probes = np.roll(gallery, 1, axis=0)
    paired = key.decrypt_scores(store.match_pairs(probes))
    plain = np.sum(_unit(gallery) * _unit(probes), axis=1)
    assert np.max(np.abs(paired - plain)) < TOLERANCE
    # The stored bytes give the same store back; damaged ones are one error.
    stored = store.to_bytes()
    again = EncryptedTemplates.from_bytes(stored)
    np.testing.assert_array_equal(key.decrypt_scores(again.match(probe)), searched)
    with pytest.raises(FaceBoneError, match="encrypted store is damaged"):
        EncryptedTemplates.from_bytes(stored[: len(stored) // 2])
    with pytest.raises(FaceBoneError, match=r"probes must be numbers of shape \(4114, 128\)"):
        store.match_pairs(probes[:10])


@pytest.mark.slow
def test_encrypted_cosine_fusion_keeps_the_plain_auc(
    tmp_path, sface_dlib_embedder, cache_dir, lfw_root, protocol
):
    train, test = protocol["target_train"], protocol["target_test"]
    labels = np.array([p.label for p in test])
    answers = {}
    for name in ("cosine-fusion", "cosine-fusion-ckks"):
        system = FRSystem(**create_defense(name).system_params({}, seed=0))
        system.fit(sface_dlib_embedder, lfw_root, train)
        answers[name] = system.predict_proba(lfw_root, test)
    plain, encrypted = answers.values()
    assert system.template_protection == "ckks"
    assert abs(roc_auc_score(labels, encrypted) - roc_auc_score(labels, plain)) < 0.001
    # A score off by TOLERANCE moves a probability by at most slope / 4 times that.
    bound = np.max(system.predictor_.slopes_) / 4 * TOLERANCE
    assert np.max(np.abs(encrypted - plain)) < bound

    # The model directory records the keys' fingerprint only; loading needs the very keys.
    save_system(system, tmp_path / "model")
    config = (tmp_path / "model" / "config.json").read_text()
    assert json.loads(config)["key_fingerprint"] and "context" not in config
    assert not any(path.suffix == ".npz" for path in (tmp_path / "model").iterdir())
    keys = system.protections_
    loaded = load_system(tmp_path / "model", EmbeddingCache(cache_dir), progress=False, keys=keys)
    try:
        again = loaded.predict_proba(lfw_root, test[:50])
    finally:
        loaded.embedder_.close()
    assert np.max(np.abs(again - encrypted[:50])) < 2 * bound
    others = {name: create_protection("ckks", dim_in=128).fit() for name in ("sface", "dlib")}
    with pytest.raises(FaceBoneError, match="fingerprint"):
        load_system(tmp_path / "model", None, progress=False, keys=others)


@pytest.mark.parametrize("predictor", ["nn", "euclidean"])
def test_encrypted_templates_need_the_cosine_predictor(
    predictor, sface_dlib_embedder, lfw_root, protocol
):
    system = FRSystem(
        ["sface", "dlib"], predictor=predictor, mitigation="multi", template_protection="ckks"
    )
    with pytest.raises(FaceBoneError, match=f"needs the cosine predictor, not '{predictor}'"):
        system.fit(sface_dlib_embedder, lfw_root, protocol["target_train"][:40])


@pytest.mark.slow
def test_the_stolen_store_holds_no_template(key, test_pairs):
    """No float32 or float64 window of the stored bytes, at any byte offset, is within L2
    distance 0.1 of an enrolled template (the unit vector that is encrypted) or of the
    embedding it came from; the same search finds them in a plain store. L2, not max-abs: a
    unit vector in 128-D has coordinates near 0.09, so a run of zeros would be within max-abs
    0.1 of many templates while it is at L2 distance 1 from all."""
    enrolled = np.unique(test_pairs[0], axis=0)[:300]  # an image may be in several pairs
    stolen = key.encrypt(enrolled).to_bytes()
    for references in (_unit(enrolled), enrolled):
        assert found_near(stolen, references, 0.1) == 0
        for dtype in (np.float32, np.float64):
            plain = io.BytesIO()
            np.save(plain, references[:20].astype(dtype))
            assert found_near(b"\x00" + plain.getvalue(), references[:20], 0.1) == 20


def test_key_file_is_private_never_overwritten_and_a_wrong_key_is_refused(
    tmp_path, key, test_pairs
):
    e1, e2, _ = test_pairs
    scores = key.encrypt(e1[:20]).match(e2[0])
    path = tmp_path / "secret" / "ckks.key"
    save_keys(path, {"sface": key})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(FaceBoneError, match="exists"):
        save_keys(path, {"sface": create_protection("ckks", dim_in=128)})
    assert path.read_bytes() == before
    loaded = load_key(path)
    assert loaded.fingerprint() == key.fingerprint()
    np.testing.assert_array_equal(loaded.decrypt_scores(scores), key.decrypt_scores(scores))
    other = create_protection("ckks", dim_in=128).fit()
    assert other.fingerprint() != key.fingerprint()
    with pytest.raises(FaceBoneError, match="another CKKS key"):
        other.decrypt_scores(scores)
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes(before[: len(before) // 2])
    with pytest.raises(FaceBoneError, match="key file"):
        load_key(damaged)
    with pytest.raises(FaceBoneError, match="seed must be None"):
        create_protection("ckks", dim_in=128, seed=1).fit()


def test_the_public_context_holds_no_secret_key(key, test_pairs):
    public = key.public_context()
    assert not ts.context_from(public).has_secret_key()
    # Ciphertexts of the server's store decrypt with nothing it holds.
    store = EncryptedTemplates.from_bytes(key.encrypt(test_pairs[0][:5]).to_bytes())
    scores = store.match(test_pairs[1][0])
    with pytest.raises(ValueError, match="secret_key"):
        scores.vectors[0].decrypt()
    # Nor does the public context pass for a key.
    with pytest.raises(ValueError, match="lacks the secret key"):
        CKKSKey.from_key({"context": np.frombuffer(public, np.uint8), "dim": np.array(128)})
    assert key.decrypt_scores(scores).shape == (5,)
