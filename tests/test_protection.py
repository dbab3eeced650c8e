"""Template protection (BioHashing) on real LFW embeddings, in a system and from the CLI."""

import json
import stat

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facebone.cli import main
from facebone.errors import FaceBoneError
from facebone.protection import (
    create_protection,
    list_protections,
    load_key,
    load_keys,
    save_keys,
)
from facebone.system import FRSystem

POWELL = ["Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg"]


@pytest.fixture(scope="module")
def test_pairs(protocol, lfw_embeddings):
    """(e1, e2, labels): SFace embeddings of the identity-disjoint target_test pairs."""
    table = lfw_embeddings("sface")
    pairs = protocol["target_test"]
    e1 = np.stack([table[p.image1] for p in pairs])
    e2 = np.stack([table[p.image2] for p in pairs])
    return e1, e2, np.array([p.label for p in pairs])


def _cosine_auc(a, b, labels) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return roc_auc_score(labels, np.sum(a * b, axis=1))


def test_biohash_key_is_orthogonal_seeded_and_differs_across_keys():
    assert "biohash" in list_protections()
    first = create_protection("biohash", dim_in=128, seed=7).fit()
    q = first.key_["projection"]
    np.testing.assert_allclose(q.T @ q, np.eye(128), atol=1e-10)
    again = create_protection("biohash", dim_in=128, seed=7).fit()
    np.testing.assert_array_equal(again.key_["projection"], q)
    other = create_protection("biohash", dim_in=128, seed=8).fit()
    entropy = [create_protection("biohash", dim_in=128).fit() for _ in range(2)]
    assert other.fingerprint() != first.fingerprint()
    assert entropy[0].fingerprint() != entropy[1].fingerprint()
    short = create_protection("biohash", dim_in=128, dim_out=32, seed=7)
    templates = short.transform(np.random.default_rng(0).standard_normal((5, 128)))
    assert templates.shape == (5, 32) and templates.dtype == np.float32
    assert set(np.unique(templates)) == {-1.0, 1.0}
    with pytest.raises(FaceBoneError, match="dim_out"):
        create_protection("biohash", dim_in=128, dim_out=129).fit()
    with pytest.raises(FaceBoneError, match=r"shape \(N, 128\)"):
        first.transform(np.zeros((2, 64)))


def test_protected_matching_keeps_utility_near_the_unprotected(test_pairs):
    e1, e2, labels = test_pairs
    plain = _cosine_auc(e1, e2, labels)
    protection = create_protection("biohash", dim_in=128, seed=1)
    protected = _cosine_auc(protection.transform(e1), protection.transform(e2), labels)
    assert protected >= 0.98 and protected >= plain - 0.01, (plain, protected)


def test_centring_on_other_faces_keeps_dlib_templates_useful(protocol, lfw_embeddings):
    """dlib puts every face in a narrow cone; a centre fitted on the attacker split's faces
    (other people) spreads the sign bits again."""
    table = lfw_embeddings("dlib")
    pairs = protocol["target_test"]
    e1 = np.stack([table[p.image1] for p in pairs])
    e2 = np.stack([table[p.image2] for p in pairs])
    labels = np.array([p.label for p in pairs])
    others = np.stack([table[p] for pair in protocol["attacker"] for p in pair[:2]])
    raw = create_protection("biohash", dim_in=128, seed=1)
    centred = create_protection("biohash", dim_in=128, seed=1).fit(others)
    assert np.linalg.norm(centred.key_["center"]) > 0.8
    plain_auc = _cosine_auc(raw.transform(e1), raw.transform(e2), labels)
    centred_auc = _cosine_auc(centred.transform(e1), centred.transform(e2), labels)
    assert centred_auc >= 0.99 and centred_auc > plain_auc, (plain_auc, centred_auc)


def test_templates_made_with_another_key_match_no_better_than_chance(test_pairs):
    e1, e2, labels = test_pairs
    one = create_protection("biohash", dim_in=128, seed=1)
    two = create_protection("biohash", dim_in=128, seed=2)
    cross = _cosine_auc(one.transform(e1), two.transform(e2), labels)
    assert abs(cross - 0.5) < 0.08, cross
    # The very same photo under two keys agrees on about half the bits.
    agreement = np.mean(one.transform(e1) == two.transform(e1))
    assert 0.45 < agreement < 0.55, agreement


def test_key_file_round_trip_is_private_and_never_overwritten(tmp_path, test_pairs):
    e1 = test_pairs[0][:20]
    keys = {
        "sface": create_protection("biohash", dim_in=128),
        "dlib": create_protection("biohash", dim_in=128, dim_out=64),
    }
    path = tmp_path / "keys.npz"
    save_keys(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_keys(path)
    assert list(loaded) == ["sface", "dlib"] and loaded["dlib"].output_dim == 64
    for name in keys:
        np.testing.assert_array_equal(loaded[name].transform(e1), keys[name].transform(e1))
    before = path.read_bytes()
    with pytest.raises(FaceBoneError, match="exists"):
        save_keys(path, {"sface": create_protection("biohash", dim_in=128)})
    assert path.read_bytes() == before
    with pytest.raises(FaceBoneError, match="holds 2 keys"):
        load_key(path)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(before[: len(before) // 2])
    with pytest.raises(FaceBoneError, match="key file"):
        load_keys(damaged)
    with pytest.raises(FaceBoneError, match="does not exist"):
        load_keys(tmp_path / "missing.npz")


def test_unprotected_system_protects_as_the_identity(lfw_root, protocol, cache_dir, lfw_embeddings):
    from facebone.embeddings import EmbeddingCache
    from facebone.embeddings.embedder import Embedder

    lfw_embeddings("sface")
    embedder = Embedder(["sface"], EmbeddingCache(cache_dir), progress=False)
    pairs = protocol["target_train"][:60]
    plain = FRSystem(["sface"], predictor="cosine").fit(embedder, lfw_root, pairs)
    x = np.random.default_rng(0).standard_normal((3, 128))
    np.testing.assert_array_equal(plain.protect("sface", x), x.astype(np.float32))
    key = create_protection("biohash", dim_in=128, seed=3)
    protected = FRSystem(["sface"], predictor="cosine", template_protection="biohash")
    protected.fit(embedder, lfw_root, pairs, keys={"sface": key})
    np.testing.assert_array_equal(protected.protect("sface", x), key.transform(x))
    with pytest.raises(FaceBoneError, match="keys are for backbones"):
        FRSystem(["sface"], predictor="cosine", template_protection="biohash").fit(
            embedder, lfw_root, pairs, keys={"dlib": key}
        )


def _run(capsys, argv) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(capsys, argv) -> str:
    code, _, err = _run(capsys, argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.slow
def test_train_evaluate_verify_with_a_key_file(
    tmp_path, capsys, lfw_root, cache_dir, lfw_embeddings
):
    lfw_embeddings("sface")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(tmp_path / "pairs"), "--seed", "0"])
        == 0
    )
    capsys.readouterr()
    common = ["--data", str(lfw_root), "--cache", str(cache_dir)]
    key_file, model = tmp_path / "secret" / "face.key", tmp_path / "model"

    def train(out, key):
        argv = ["train", *common, "--pairs", str(tmp_path / "pairs" / "target_train.csv")]
        argv += ["--predictor", "cosine", "--template-protection", "biohash"]
        return _run(capsys, [*argv, "--key-file", str(key), "--out", str(out), "--json"])

    code, out, err = train(model, key_file)
    assert code == 0 and json.loads(out)["key_created"], err
    created = key_file.read_bytes()
    config = (model / "config.json").read_text()
    assert "key_fingerprint" in config and "projection" not in config
    assert not any(tmp_path.joinpath("model").glob("*.npz"))
    # An existing key file is read, never replaced.
    code, out, err = train(tmp_path / "again", key_file)
    assert code == 0 and not json.loads(out)["key_created"] and key_file.read_bytes() == created

    evaluate = ["evaluate", "--model", str(model), *common]
    evaluate += ["--pairs", str(tmp_path / "pairs" / "target_test.csv")]
    code, out, err = _run(capsys, [*evaluate, "--key-file", str(key_file), "--json"])
    assert code == 0, err
    assert json.loads(out)["accuracy"] >= 0.95 and json.loads(out)["auc"] >= 0.98, out
    verify = ["verify", "--model", str(model), *(str(lfw_root / p) for p in POWELL)]
    code, out, err = _run(capsys, [*verify, "--key-file", str(key_file), "--json"])
    assert code == 0 and json.loads(out)["same"], err

    assert "--key-file" in _one_line_error(capsys, verify)
    save_keys(tmp_path / "other.key", {"sface": create_protection("biohash", dim_in=128)})
    assert "fingerprint" in _one_line_error(
        capsys, [*evaluate, "--key-file", str(tmp_path / "other.key")]
    )
    assert "does not exist" in _one_line_error(
        capsys, [*verify, "--key-file", str(tmp_path / "no.key")]
    )


@pytest.mark.slow
def test_served_embed_gives_the_protected_template(tmp_path, lfw_root, protocol, cache_dir):
    """/embed answers what the system stores: the keyed template, never the raw embedding."""
    import httpx

    from facebone.embeddings import EmbeddingCache
    from facebone.embeddings.embedder import Embedder
    from facebone.service.process import running_server
    from facebone.system import save_system

    embedder = Embedder(["sface"], EmbeddingCache(cache_dir), progress=False)
    key = create_protection("biohash", dim_in=128, seed=5)
    system = FRSystem(["sface"], predictor="cosine", template_protection="biohash")
    system.fit(embedder, lfw_root, protocol["target_train"][:80], keys={"sface": key})
    save_system(system, tmp_path / "model")
    save_keys(tmp_path / "face.key", system.protections_)
    photo = lfw_root / POWELL[0]
    with (
        running_server(
            tmp_path / "model", ["--key-file", str(tmp_path / "face.key"), "--enable-embed"]
        ) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        response = client.post("/embed", files={"img": photo.read_bytes()})
    assert response.status_code == 200, response.text
    served = np.array(response.json()["embeddings"]["sface"])
    raw = embedder.photo(photo)["sface"]
    np.testing.assert_array_equal(served, key.transform(raw[None])[0])
