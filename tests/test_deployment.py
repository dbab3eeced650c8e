"""The recommended deployment as one file: `train --deploy` trains its defense on real LFW
faces (member-free calibration on public pairs of other people, encrypted templates), `serve
--deploy` takes its output policy and query budget and refuses a model trained otherwise."""

import argparse
import json
from pathlib import Path

import pytest

from facebone.cli import main
from facebone.cli.serve import _apply_deployment
from facebone.data.pairs import pairs_csv_text
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.protection import load_keys
from facebone.system import load_system
from facebone.system.deployment import load_deployment

DEPLOY = Path(__file__).resolve().parents[1] / "configs" / "deploy.toml"


def test_shipped_deployment_is_the_hardened_fusion():
    deployment = load_deployment(DEPLOY)
    params = deployment.system_params(seed=0)
    assert deployment.defense.name == "cosine-fusion-hardened"
    assert params["calibration"] == "public" and params["template_protection"] == "ckks"
    assert deployment.output == "decision" and deployment.query_budget == 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('defense = "nope"', "defense: unknown defense 'nope'"),
        ("defense = 3", "defense: name a defense"),
        ('defense = "cosine"\nextra = 1', "extra: unknown key"),
        ('defense = "cosine"\n[service]\nquery_budget = 0', "query_budget: a whole number"),
        ('defense = "cosine"\n[service]\nquery_window = 5.0', "query_window needs"),
        ("defense = ", "bad TOML"),
    ],
)
def test_bad_deployment_files_are_one_sentence(tmp_path, text, message):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(FaceBoneError, match=message):
        load_deployment(path)


def _serve_args(**given):
    fields = {"deploy": DEPLOY, "output": None, "query_budget": None, "query_window": None}
    return argparse.Namespace(**{**fields, **given})


def test_serve_takes_the_deployment_settings_unless_flags_give_them():
    args = _serve_args()
    _apply_deployment(args)
    assert (args.output, args.query_budget, args.query_window) == ("decision", 1000, 86400.0)
    args = _serve_args(output="coarse", query_budget=5)
    _apply_deployment(args)
    assert (args.output, args.query_budget, args.query_window) == ("coarse", 5, None)
    args = _serve_args(deploy=None)
    _apply_deployment(args)
    assert args.output == "probability"


@pytest.mark.slow
def test_train_deploy_fits_on_public_pairs_and_serve_refuses_another_model(
    lfw_root, protocol, cache_dir, tmp_path, capsys
):
    members, public = tmp_path / "members.csv", tmp_path / "public.csv"
    members.write_text(pairs_csv_text(protocol["target_train"][:60]))
    public.write_text(pairs_csv_text(protocol["attacker"][:200]))
    common = ["--data", str(lfw_root), "--cache", str(cache_dir), "--json"]
    argv = ["train", "--deploy", str(DEPLOY), "--pairs", str(members), *common]
    key = tmp_path / "keys" / "k.key"
    assert main([*argv, "--out", str(tmp_path / "no-public"), "--key-file", str(key)]) == 2
    assert "give --public-pairs" in capsys.readouterr().err
    assert (
        main(
            [
                *argv,
                "--public-pairs",
                str(members),
                "--out",
                str(tmp_path / "m"),
                "--key-file",
                str(key),
            ]
        )
        == 2
    )
    assert "--public-pairs shares" in capsys.readouterr().err
    argv += ["--public-pairs", str(public), "--key-file", str(key)]
    assert main([*argv, "--out", str(tmp_path / "deployed")]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["template_protection"] == "ckks" and trained["key_created"]
    keys = load_keys(key)
    system = load_system(tmp_path / "deployed", EmbeddingCache(cache_dir), False, keys)
    load_deployment(DEPLOY).check_model(system)
    # Calibrated on the public pairs only: other members give the very same numbers.
    other = tmp_path / "other.csv"
    other.write_text(pairs_csv_text(protocol["target_train"][60:120]))
    argv[argv.index(str(members))] = str(other)
    assert main([*argv, "--out", str(tmp_path / "again")]) == 0
    capsys.readouterr()
    again = load_system(tmp_path / "again", EmbeddingCache(cache_dir), False, keys)
    assert again.predictor_.slopes_.tolist() == system.predictor_.slopes_.tolist()
    assert again.predictor_.intercepts_.tolist() == system.predictor_.intercepts_.tolist()
    assert (
        main(
            [
                "train",
                "--pairs",
                str(members),
                *common,
                "--predictor",
                "cosine",
                "--out",
                str(tmp_path / "plain"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    plain = load_system(tmp_path / "plain", EmbeddingCache(cache_dir), False)
    with pytest.raises(FaceBoneError, match="not trained as"):
        load_deployment(DEPLOY).check_model(plain)
