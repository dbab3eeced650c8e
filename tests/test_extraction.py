"""Model extraction of a real FR system trained on LFW faces: the copy grows faithful with the
query budget, and the CLI reports it per budget."""

import json

import numpy as np
import pytest

from facebone.attacks.base import AttackError, AttackNotFittedError, pair_key
from facebone.attacks.extraction.surrogate import (
    CopiedShadowTrainer,
    ModelExtraction,
    query_pairs,
)
from facebone.attacks.system_target import system_query_fn
from facebone.cli import main
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.system import FRSystem


@pytest.fixture(scope="module")
def setting(lfw_root, protocol, cache_dir, lfw_embeddings):
    """The undefended target (SFace + nn) and the attacker's SFace embeddings of every image."""
    embeddings = lfw_embeddings("sface")
    embedder = Embedder(["sface"], EmbeddingCache(cache_dir), progress=False)
    system = FRSystem(["sface"]).fit(embedder, lfw_root, protocol["target_train"])
    return system_query_fn(system, lfw_root), embeddings


def test_query_pairs_are_distinct_balanced_and_from_the_attackers_images(protocol):
    attacker = protocol["attacker"]
    asked = query_pairs(attacker, 400, 0.5, np.random.default_rng(0))
    own = {p for pair in attacker for p in (pair.image1, pair.image2)}
    assert len(asked) == 400 and len({pair_key(p) for p in asked}) == 400
    assert all(p.image1 in own and p.image2 in own for p in asked)
    assert sum(p.label for p in asked) == 200
    again = query_pairs(attacker, 400, 0.5, np.random.default_rng(0))
    assert again == asked


@pytest.mark.slow
def test_fidelity_grows_with_the_query_budget(setting, protocol):
    target, embeddings = setting
    disagreement = {}
    for budget in (20, 1000):
        runs = [
            ModelExtraction(budget, seed=seed)
            .fit(target, embeddings, protocol["attacker"])
            .evaluate(target, embeddings, protocol["target_test"])
            for seed in range(3)
        ]
        disagreement[budget] = 1 - np.mean([r["fidelity"] for r in runs])
        if budget == 1000:
            assert min(r["fidelity"] for r in runs) >= 0.99, runs
            assert min(r["accuracy"] for r in runs) >= 0.98, runs
    assert disagreement[1000] <= disagreement[20] / 2, disagreement


def test_extraction_refuses_bad_use(setting, protocol):
    target, embeddings = setting
    extraction = ModelExtraction(50)
    with pytest.raises(AttackNotFittedError):
        extraction.surrogate_query_fn(embeddings)
    with pytest.raises(AttackError, match="budget"):
        ModelExtraction(1).fit(target, embeddings, protocol["attacker"])
    extraction.fit(target, embeddings, protocol["attacker"])
    with pytest.raises(AttackError, match="asked"):
        extraction.evaluate(target, embeddings, extraction.queries_[:5])


def test_cli_reports_fidelity_and_membership_per_budget(
    tmp_path, capsys, lfw_root, cache_dir, lfw_embeddings
):
    lfw_embeddings("sface")
    pairs = tmp_path / "pairs"
    assert main(["pairs", "--data", str(lfw_root), "--out", str(pairs), "--seed", "0"]) == 0
    common = ["--data", str(lfw_root), "--cache", str(cache_dir)]
    train = ["train", *common, "--pairs", str(pairs / "target_train.csv")]
    assert main([*train, "--out", str(tmp_path / "model"), "--epochs", "20"]) == 0
    capsys.readouterr()
    argv = ["attack", "extraction", "--model", str(tmp_path / "model"), *common]
    argv += ["--attacker", str(pairs / "attacker.csv"), "--budgets", "30,300"]
    code = main(
        [
            *argv,
            "--members",
            str(pairs / "target_train.csv"),
            "--nonmembers",
            str(pairs / "target_test.csv"),
            "--shadows",
            "2",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert [row["budget"] for row in result["budgets"]] == [30, 300]
    for row in result["budgets"]:
        assert 0.5 < row["fidelity"] <= 1 and 0.5 < row["accuracy"] <= 1, row
        assert 0 <= row["membership"]["auc"] <= 1 and "0.01" in row["membership"]["tpr_at_fpr"]
    assert result["membership_baseline"]["auc"] > 0
    assert 0 <= result["membership_lira_copied_shadows"]["auc"] <= 1

    for bad, words in (
        (["--budgets", "ten"], "--budgets"),
        (["--members", str(pairs / "target_train.csv")], "--nonmembers"),
        (["--shadows", "1"], "--shadows"),
    ):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_copied_shadows_learn_the_targets_answers(setting, protocol):
    target, embeddings = setting
    half = protocol["attacker"][::2]
    copies = CopiedShadowTrainer(target, embeddings).train_many([(half, 1), (half, 2)])
    test = protocol["target_test"]
    original = target(test) >= 0.5
    for copy in copies:
        assert np.mean((copy(test) >= 0.5) == original) >= 0.98
