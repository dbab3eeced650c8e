"""Model inversion on real LFW faces: SFace templates of target people the attacker never saw,
reconstructed and scored by dlib; template protection without the key defeats the decoder."""

import json

import numpy as np
import pytest

from facebone.attacks.base import AttackError, AttackNotFittedError, identity_of
from facebone.attacks.inversion.reconstruction import (
    cosine_matrix,
    embed_reconstructions,
    write_grid,
)
from facebone.attacks.inversion.run import InversionData
from facebone.attacks.registry import create_attack, list_attacks
from facebone.cli import main
from facebone.data.pairs import write_pairs
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.execution import torch_threads
from facebone.protection import create_protection

# Enough targets that a few successes above the 1% chance rate are a signal, not one lucky
# face; a 32 px decoder trains in seconds and already gives them.
N_TARGETS = 150


def _images(pairs) -> list[str]:
    return list(dict.fromkeys(p for pair in pairs for p in pair[:2]))


@pytest.fixture(scope="module")
def data(lfw_root, protocol, cache_dir, backbone_pool, lfw_embeddings):
    lfw_embeddings("sface"), lfw_embeddings("dlib")  # fill the cache once for the session
    return InversionData.prepare(
        lfw_root,
        _images(protocol["attacker"]),
        _images(protocol["target_test"])[:N_TARGETS],
        backbone_pool("sface"),
        backbone_pool("dlib"),
        EmbeddingCache(cache_dir),
    )


def _decoder():
    return create_attack("decoder", image_size=32, epochs=8, seed=0)


@pytest.fixture(scope="module")
def undefended(data):
    with torch_threads(1):
        return data.evaluate(_decoder(), data.attacker_embeddings, data.target_embeddings)


def test_evaluation_is_identity_disjoint(data, lfw_root, backbone_pool):
    assert data.thresholds[0.001] > data.thresholds[0.01]
    people = set(map(identity_of, data.attacker_paths))
    assert people.isdisjoint(map(identity_of, data.target_paths))
    with pytest.raises(FaceBoneError, match="share 1 people"):
        InversionData.prepare(
            lfw_root,
            data.attacker_paths[:3],
            data.attacker_paths[:1],
            backbone_pool("sface"),
            backbone_pool("dlib"),
            None,
        )


@pytest.mark.slow
def test_decoder_beats_chance_and_protection_without_key_lowers_it(data, undefended, tmp_path):
    scores, images, _ = undefended
    assert images.shape == (N_TARGETS, 32, 32, 3) and images.dtype == np.uint8
    assert scores.chance == {"far_0.001": 0.001, "far_0.01": 0.01}
    assert scores.sar["type1"]["far_0.01"] > scores.chance["far_0.01"]
    assert 0 < scores.n_type2_targets < N_TARGETS and scores.n_type2_comparisons > 0
    assert 0 < scores.ssim < 1
    system_key = create_protection("biohash", dim_in=128, seed=1)
    own_key = create_protection("biohash", dim_in=128, seed=2)
    with torch_threads(1):
        protected, _, _ = data.evaluate(
            _decoder(),
            own_key.transform(data.attacker_embeddings),
            system_key.transform(data.target_embeddings),
        )
    assert protected.sar["type1"]["far_0.01"] < scores.sar["type1"]["far_0.01"]
    rows = write_grid(tmp_path / "grid.png", data.target_faces[:3], {"decoder": images[:3]})
    assert rows.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_optimisation_moves_the_mean_face_towards_the_template(data, backbone_pool):
    from facebone.backbones.onnx_torch import differentiable_backbone

    attack = create_attack("optimise", backbone=differentiable_backbone("sface"), budget=8)
    attack.fit(data.attacker_faces, data.attacker_embeddings)
    templates = data.target_embeddings[:4]
    with torch_threads(1):
        images = attack.invert(templates)
    sface = backbone_pool("sface")
    start = embed_reconstructions(np.repeat(attack.mean_face_[None], 4, axis=0), sface)
    after = embed_reconstructions(images, sface)
    assert np.all(
        cosine_matrix(after, templates).diagonal() > cosine_matrix(start, templates).diagonal()
    )


@pytest.mark.slow
def test_blackbox_search_raises_the_service_score(data, backbone_pool):
    """The oracle is a template-matching service: cosine of the probe's SFace embedding with
    the enrolled template; the search never reads the template itself."""
    sface = backbone_pool("sface")
    asked = []

    def oracle(images, records):
        asked.append(len(images))
        return cosine_matrix(embed_reconstructions(images, sface), records).diagonal()

    attack = create_attack("blackbox", oracle=oracle, budget=30, population=10, seed=0)
    attack.fit(data.attacker_faces[:200], data.attacker_embeddings[:200])
    records = data.target_embeddings[:2]
    images = attack.invert(records)
    assert sum(asked) == 2 * 30
    mean_face = (attack.mean_ * 255).round().astype(np.uint8).reshape(1, 64, 64, 3)  # the start
    start = oracle(np.repeat(mean_face, 2, axis=0), records)
    assert np.all(oracle(images, records) > start)


def test_contract_errors(data):
    assert list_attacks(family="inversion") == ["decoder", "optimise", "blackbox"]
    with pytest.raises(AttackNotFittedError):
        _decoder().invert(data.target_embeddings[:2])
    with pytest.raises(AttackError, match="one row per face"):
        _decoder().fit(data.attacker_faces[:4], data.attacker_embeddings[:3])


@pytest.fixture(scope="module")
def workspace(sface_cosine_models, protocol, data):
    """The shared plain and protected SFace + cosine models, and a small attacker file."""
    # A small attacker keeps the command quick: ~70 photos still make ~2,000 impostor pairs.
    write_pairs(sface_cosine_models / "attacker_small.csv", protocol["attacker"][:40])
    return sface_cosine_models


def _cli(workspace, lfw_root, cache_dir, model, *extra):
    return [
        "attack",
        "inversion",
        "--model",
        str(workspace / model),
        "--data",
        str(lfw_root),
        "--cache",
        str(cache_dir),
        "--targets",
        str(workspace / "target_test.csv"),
        "--attacker",
        str(workspace / "attacker_small.csv"),
        "--max-targets",
        "4",
        "--budget",
        "1",
        "--json",
        *extra,
    ]


@pytest.mark.slow
def test_cli_writes_metrics_and_grid_for_each_threat_model(workspace, lfw_root, cache_dir, capsys):
    out = workspace / "out"
    assert main(_cli(workspace, lfw_root, cache_dir, "plain", "--out", str(out))) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["sar"]) == {"type1", "type2"}
    assert set(result["sar"]["type1"]) == {"far_0.001", "far_0.01"}
    assert result["chance"] == {"far_0.001": 0.001, "far_0.01": 0.01}
    impostors = result["threat_models"]["undefended"]["impostor_acceptance"]
    assert 0 <= impostors["far_0.001"] <= impostors["far_0.01"] <= 1
    assert list(result["threat_models"]) == ["undefended"] and result["evaluator"] == "dlib"
    assert json.loads((out / "inversion.json").read_text())["sar"] == result["sar"]
    assert (out / "inversion-grid.png").stat().st_size > 0
    key = ["--key-file", str(workspace / "sface.key")]
    assert main(_cli(workspace, lfw_root, cache_dir, "protected", *key)) == 0
    protected = json.loads(capsys.readouterr().out)
    assert list(protected["threat_models"]) == ["own_key", "stolen_key"]
    assert protected["sar"] == protected["threat_models"]["own_key"]["sar"]


@pytest.mark.slow
def test_cli_queries_a_protected_service_without_its_key(workspace, lfw_root, cache_dir, capsys):
    """Template protection hides stored templates, not the service's answers: the score-only
    search runs against the protected system as one threat model; optimise needs raw
    templates and is refused there."""
    key = ["--key-file", str(workspace / "sface.key")]
    blackbox = ["--method", "blackbox", "--budget", "20", *key]
    assert main(_cli(workspace, lfw_root, cache_dir, "protected", *blackbox)) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["threat_models"]) == ["service"]
    assert result["threat_models"]["service"]["n_targets"] == 4
    optimise = ["--method", "optimise", *key]
    assert main(_cli(workspace, lfw_root, cache_dir, "protected", *optimise)) == 2
    assert "--method decoder or blackbox" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "0"], "--budget must be at least 1"),
        (["--backbone", "dlib"], "--backbone 'dlib' is not one of the system's"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
    ],
)
def test_cli_bad_input_is_one_line(workspace, lfw_root, cache_dir, capsys, extra, message):
    assert main(_cli(workspace, lfw_root, cache_dir, "plain", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err


def test_cli_keeps_existing_results_unless_forced(workspace, lfw_root, cache_dir, capsys):
    out = workspace / "taken"
    out.mkdir()
    (out / "inversion.json").write_text("mine")
    assert main(_cli(workspace, lfw_root, cache_dir, "plain", "--out", str(out))) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (out / "inversion.json").read_text() == "mine"
