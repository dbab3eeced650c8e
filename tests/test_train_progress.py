"""Issue 8: `facebone train` shows its nn epochs on stderr when training lasts, unless asked
for JSON; library training (experiments, shadows) stays silent."""

import pytest

from facebone.attacks.embedding_target import embed_pairs
from facebone.cli import main
from facebone.predictors import create_predictor
from facebone.predictors import nn as nn_module


@pytest.fixture
def bar_at_once(monkeypatch):
    """Show the bar from the first epoch: these trainings are shorter than its delay."""
    monkeypatch.setattr(nn_module, "PROGRESS_AFTER_S", 0.0)


@pytest.fixture(scope="module")
def train_args(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("progress")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(root / "pairs"), "--seed", "0"]) == 0
    )
    return [
        "train",
        "--data",
        str(lfw_root),
        "--cache",
        str(cache_dir),
        "--pairs",
        str(root / "pairs" / "target_train.csv"),
        "--backbones",
        "sface",
        "--epochs",
        "30",
        "--out",
        str(root / "model"),
        "--force",
    ]


def test_train_shows_an_epoch_bar_on_stderr(train_args, bar_at_once, capsys):
    assert main(train_args) == 0
    captured = capsys.readouterr()
    assert "training nn: 100%" in captured.err and "30/30" in captured.err, captured.err
    assert "epoch/s" in captured.err and "training nn" not in captured.out


@pytest.mark.slow
def test_dp_training_shows_its_epochs_too(train_args, bar_at_once, capsys):
    assert main([*train_args, "--dp-epsilon", "8", "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "training nn (DP-SGD): 100%" in err and "3/3" in err, err


def test_a_training_over_within_a_second_shows_no_bar(train_args, capsys):
    assert main([*train_args, "--epochs", "3"]) == 0
    assert "training nn" not in capsys.readouterr().err


def test_train_with_json_shows_no_bar(train_args, bar_at_once, capsys):
    assert main([*train_args, "--json"]) == 0
    assert "training nn" not in capsys.readouterr().err


def test_training_outside_the_cli_is_silent(protocol, lfw_embeddings, bar_at_once, capsys):
    e1, e2, y = embed_pairs(lfw_embeddings("sface"), protocol["target_train"])
    create_predictor("nn", epochs=5).fit(e1, e2, y)
    assert capsys.readouterr().err == ""
