"""train / evaluate / verify / attack from the command line, on real LFW photos."""

import json

import pytest

from facebone.cli import main

POWELL = ["Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg"]
BLAIR = "Tony_Blair/Tony_Blair_0005.jpg"


def run_json(capsys, argv):
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def run_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("cli")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(root / "pairs"), "--seed", "0"]) == 0
    )
    common = ["--data", str(lfw_root), "--cache", str(cache_dir)]
    code = main(
        [
            "train",
            *common,
            "--pairs",
            str(root / "pairs" / "target_train.csv"),
            "--backbones",
            "sface",
            "--out",
            str(root / "model"),
        ]
    )
    assert code == 0
    return {"root": root, "common": common, "pairs": root / "pairs", "model": root / "model"}


def evaluate_args(workspace, pairs) -> list[str]:
    return [
        "evaluate",
        "--model",
        str(workspace["model"]),
        *workspace["common"],
        "--pairs",
        str(pairs),
    ]


def test_evaluate_reports_every_metric(workspace, capsys):
    result = run_json(capsys, evaluate_args(workspace, workspace["pairs"] / "target_test.csv"))
    for key in ("accuracy", "auc", "precision", "recall", "f1", "tar_at_far", "n_pairs", "skipped"):
        assert key in result
    assert set(result["tar_at_far"]) == {"0.01", "0.001"}
    assert result["accuracy"] >= 0.99 and result["skipped"] == 0 and result["n_pairs"] > 300


def test_verify_same_and_different(workspace, capsys, lfw_root):
    base = ["verify", "--model", str(workspace["model"])]
    same = run_json(
        capsys, [*base[:1], str(lfw_root / POWELL[0]), str(lfw_root / POWELL[1]), *base[1:]]
    )
    different = run_json(
        capsys, [*base[:1], str(lfw_root / POWELL[0]), str(lfw_root / BLAIR), *base[1:]]
    )
    assert same["same"] is True and same["backbone"] == "sface" and same["probability"] > 0.5
    assert different["same"] is False and different["probability"] < 0.5


def test_evaluate_counts_pairs_with_missing_images(workspace, capsys, tmp_path):
    pairs = workspace["pairs"] / "target_test.csv"
    lines = pairs.read_text().splitlines()
    edited = tmp_path / "pairs.csv"
    edited.write_text("\n".join([*lines[:40], "Nobody/Nobody_0001.jpg,Nobody/Nobody_0002.jpg,1"]))
    result = run_json(capsys, evaluate_args(workspace, edited))
    assert result["n_pairs"] == 39 and result["skipped"] == 1


@pytest.mark.slow
def test_dp_training_reports_its_budget(workspace, capsys):
    result = run_json(
        capsys,
        [
            "train",
            *workspace["common"],
            "--pairs",
            str(workspace["pairs"] / "target_train.csv"),
            "--dp-epsilon",
            "8",
            "--epochs",
            "5",
            "--out",
            str(workspace["root"] / "dp"),
        ],
    )
    assert 0 < result["dp"]["epsilon"] <= 8 and 0 < result["dp"]["delta"] < 1e-3


@pytest.mark.slow
def test_membership_attack_json(workspace, capsys, tmp_path):
    pairs = workspace["pairs"]
    result = run_json(
        capsys,
        [
            "attack",
            "membership",
            "--model",
            str(workspace["model"]),
            *workspace["common"],
            "--members",
            str(pairs / "target_train.csv"),
            "--nonmembers",
            str(pairs / "target_test.csv"),
            "--attacker",
            str(pairs / "attacker.csv"),
            "--attacks",
            "blackbox-gb,rule-based",
            "--plot",
            str(tmp_path / "roc.png"),
        ],
    )
    assert set(result["attacks"]) == {"blackbox-gb", "rule-based"}
    for metrics in result["attacks"].values():
        for key in ("auc", "balanced_accuracy", "advantage", "tpr_at_fpr"):
            assert key in metrics
        assert set(metrics["tpr_at_fpr"]) == {"0.01", "0.001"}
    assert (tmp_path / "roc.png").stat().st_size > 1000


def test_bad_inputs(workspace, capsys, tmp_path, lfw_root):
    common, pairs, model = workspace["common"], workspace["pairs"], str(workspace["model"])
    train = [
        "train",
        *common,
        "--pairs",
        str(pairs / "target_train.csv"),
        "--out",
        str(tmp_path / "m"),
    ]
    assert "unknown backbone 'vgg'" in run_error(capsys, [*train, "--backbones", "vgg"])
    assert "only apply to the nn" in run_error(
        capsys, [*train, "--predictor", "cosine", "--epochs", "3"]
    )
    assert "uses one backbone" in run_error(capsys, [*train, "--backbones", "sface,dlib"])
    assert "does not exist" in run_error(
        capsys,
        [
            "evaluate",
            "--model",
            str(tmp_path / "none"),
            *common,
            "--pairs",
            str(pairs / "target_test.csv"),
        ],
    )
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("left,right,same\n")
    assert "must have the columns" in run_error(
        capsys, ["evaluate", "--model", model, *common, "--pairs", str(wrong)]
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("image1,image2,label\n")
    attack = [
        "attack",
        "membership",
        "--model",
        model,
        *common,
        "--attacker",
        str(pairs / "attacker.csv"),
    ]
    assert "both members and non-members" in run_error(
        capsys,
        [
            *attack,
            "--members",
            str(pairs / "target_test.csv"),
            "--nonmembers",
            str(pairs / "target_test.csv"),
        ],
    )
    assert "has no pairs" in run_error(
        capsys, [*attack, "--members", str(empty), "--nonmembers", str(pairs / "target_test.csv")]
    )
    assert "unknown attack 'magic'" in run_error(
        capsys,
        [
            *attack,
            "--members",
            str(pairs / "target_train.csv"),
            "--nonmembers",
            str(pairs / "target_test.csv"),
            "--attacks",
            "magic",
        ],
    )
    assert "no face found" in run_error(
        capsys, ["verify", str(lfw_root / POWELL[0]), str(_blank(tmp_path)), "--model", model]
    )


def _blank(tmp_path):
    from PIL import Image

    path = tmp_path / "blank.jpg"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(path)
    return path
