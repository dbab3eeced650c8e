"""What the study's threat attacks meet, on real LFW faces: what a thief reads from a stolen
store under each protection, the answers a client sees under an output policy, and shadows of
an encrypted system trained in plaintext."""

import numpy as np
import pytest

from facebone.attacks.system_target import plain_equivalent
from facebone.experiments.evaluation import train_target
from facebone.experiments.threats.stolen import thief_templates
from facebone.predictors.base import l2_normalize
from facebone.system import FRSystem

FUSION = {
    "backbones": ["sface", "dlib"],
    "predictor": "cosine",
    "predictor_params": {},
    "mitigation": "multi",
    "assign": "all",
    "infer": "ensemble",
    "fixed_backbone": None,
    "seed": 0,
}


def _faces(lfw_embeddings, pairs, n):
    paths = sorted({p for pair in pairs for p in (pair.image1, pair.image2)})[:n]
    return np.stack([lfw_embeddings("sface")[p] for p in paths])


@pytest.fixture(scope="module")
def faces(lfw_embeddings, protocol):
    """The thief's own faces (attacker people) and the enrolled ones (target_test people)."""
    return (
        _faces(lfw_embeddings, protocol["attacker"], 200),
        _faces(lfw_embeddings, protocol["target_test"], 120),
    )


def _fitted(protection, sface_dlib_embedder, lfw_root, protocol):
    params = {**FUSION, "template_protection": protection}
    return FRSystem(**params).fit(sface_dlib_embedder, lfw_root, protocol["target_train"][:60])


def test_a_thief_reads_plain_templates_as_they_are(faces, sface_dlib_embedder, lfw_root, protocol):
    system = _fitted(None, sface_dlib_embedder, lfw_root, protocol)
    own, stored = thief_templates(system, "sface", *faces, seed=0)
    np.testing.assert_allclose(stored, faces[1], atol=1e-6)
    np.testing.assert_allclose(own, faces[0], atol=1e-6)


def test_a_thief_reads_nothing_like_a_template_from_an_encrypted_store(
    faces, sface_dlib_embedder, lfw_root, protocol
):
    system = _fitted("ckks", sface_dlib_embedder, lfw_root, protocol)
    own, stored = thief_templates(system, "sface", *faces, seed=0)
    assert own.shape == faces[0].shape and stored.shape == faces[1].shape
    assert np.all(np.isfinite(stored))
    # Every window is far from every enrolled template (unit vectors: 0.1 is a near match).
    distances = np.linalg.norm(stored[:, None, :] - l2_normalize(faces[1])[None, :, :], axis=2)
    assert distances.min() > 0.1
    # The same faces under another draw of windows: nothing ties a window to a face.
    _, again = thief_templates(system, "sface", *faces, seed=1)
    assert not np.allclose(again, stored)


def test_a_client_sees_what_the_output_policy_shows(
    sface_dlib_embedder, lfw_root, protocol, lfw_embeddings
):
    training, test = protocol["target_train"][:60], protocol["target_test"][:80]
    attacker = protocol["attacker"][:120]
    plain = train_target(FUSION, sface_dlib_embedder, lfw_root, training, test, attacker, 0)
    hardened = train_target(
        FUSION, sface_dlib_embedder, lfw_root, training, test, attacker, 0, "decision"
    )
    probabilities = plain.query_fn(lfw_root)(test)
    decisions = hardened.query_fn(lfw_root)(test)
    assert set(np.unique(decisions)) <= {0.0, 1.0}
    np.testing.assert_array_equal(decisions, (probabilities >= 0.5).astype(float))
    assert hardened.utility == plain.utility  # utility from the probabilities: same decisions


def test_shadows_of_an_encrypted_system_train_in_plaintext():
    assert (
        plain_equivalent({**FUSION, "template_protection": "ckks"})["template_protection"] is None
    )
    kept = {**FUSION, "template_protection": "biohash"}
    assert plain_equivalent(kept) is kept
