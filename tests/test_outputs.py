"""Issue 16, data loss: every output follows one rule (`cli.output.check_outputs`, the rule
`report` keeps): never inside the data folder, never replacing a file without --force, a
file where a folder is meant (or the reverse) refused before any work; temporary names are
made unique by FaceBone, never fixed names that may hold the user's files."""

import json
from pathlib import Path

import pytest

import test_hardening
from facebone.cli import main
from test_hardening import membership_args, run_error, train_args

# Issue 8's fixtures: a data root of real LFW photos of four people, and pairs of them.
data = test_hardening.data
pairs_csv = test_hardening.pairs_csv


def test_retraining_never_touches_a_folder_named_like_its_old_copy(
    data, pairs_csv, tmp_path, cache_dir
):
    aside = tmp_path / ".model.old"  # the name the old model used to be moved to
    aside.mkdir()
    (aside / "thesis.tex").write_text("years of work")
    out = tmp_path / "model"
    assert main(train_args(data, pairs_csv, out, cache_dir)) == 0  # new model
    assert main(train_args(data, pairs_csv, out, cache_dir)) == 0  # replaces it
    assert (aside / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".model.old",
        "data",
        "model",
        "pairs.csv",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "predictor.safetensors"]


def test_train_out_dot_writes_the_current_folder(
    data, pairs_csv, tmp_path, cache_dir, monkeypatch, capsys
):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main([*train_args(data, pairs_csv, Path("."), cache_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "."
    assert (tmp_path / "here" / "config.json").is_file()


def test_plot_never_replaces_a_file_without_force(data, tmp_path, capsys):
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"my own plot")
    err = run_error(capsys, membership_args(data, tmp_path, plot))
    assert "already exists" in err and "--force" in err
    assert plot.read_bytes() == b"my own plot"
    # With --force the plot check passes: the command goes on to what it reads next.
    err = run_error(capsys, [*membership_args(data, tmp_path, plot), "--force"])
    assert "missing.csv" in err


@pytest.mark.parametrize("force", [False, True])
def test_a_photo_in_the_data_folder_is_never_an_output(data, tmp_path, capsys, force):
    photo = next((data / "Tony_Blair").iterdir())
    before = photo.read_bytes()
    argv = membership_args(data, tmp_path, photo) + (["--force"] if force else [])
    assert "inside the data folder" in run_error(capsys, argv)
    assert photo.read_bytes() == before


def test_a_plot_format_is_checked_before_the_work(data, tmp_path, capsys):
    err = run_error(capsys, membership_args(data, tmp_path, tmp_path / "roc.xyz"))
    assert "cannot save a plot as .xyz" in err


def _inversion(data: Path, tmp_path: Path, out: Path) -> list[str]:
    missing = str(tmp_path / "missing.csv")
    return [
        "attack",
        "inversion",
        "--model",
        str(tmp_path / "no-model"),
        "--data",
        str(data),
        "--targets",
        missing,
        "--attacker",
        missing,
        "--out",
        str(out),
    ]


def test_inversion_outputs_are_checked_before_the_work(data, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    assert "is a file, not a folder" in run_error(capsys, _inversion(data, tmp_path, a_file))
    out = tmp_path / "inv"
    out.mkdir()
    (out / "inversion.json").write_text("{}")
    err = run_error(capsys, _inversion(data, tmp_path, out))
    assert "inversion.json already exists" in err
    assert "inside the data folder" in run_error(
        capsys, _inversion(data, tmp_path, data / "inversion")
    )
    assert not (data / "inversion").exists()


def test_a_cache_that_is_a_file_fails_before_the_work(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    err = run_error(capsys, ["embed", "--data", str(data), "--cache", str(cache)])
    assert "embedding cache" in err and "is a file, not a folder" in err
    assert "embedding cache" in run_error(
        capsys, ["embed", "--data", str(data), "--cache", str(data / "cache")]
    )
    assert not (data / "cache").exists()


def test_pairs_and_models_stay_out_of_the_data_folder(data, pairs_csv, tmp_path, cache_dir, capsys):
    argv = ["pairs", "--data", str(data), "--out", str(data / "Tony_Blair")]
    assert "inside the data folder" in run_error(capsys, argv)
    assert "inside the data folder" in run_error(
        capsys, train_args(data, pairs_csv, data / "model", cache_dir)
    )
    assert sorted(p.name for p in data.iterdir()) == sorted(
        ["Colin_Powell", "Tony_Blair", "George_W_Bush", "Gerhard_Schroeder"]
    )


def test_export_never_replaces_a_file_without_force(tmp_path, capsys):
    results = tmp_path / "study"
    results.mkdir()
    out = tmp_path / "export.json"
    out.write_text("mine")
    err = run_error(capsys, ["study", "export", str(results), "--out", str(out)])
    assert "already exists" in err and out.read_text() == "mine"


def test_download_into_a_destination_whose_lfw_is_a_file(tmp_path, capsys):
    (tmp_path / "lfw").write_text("not a folder")
    err = run_error(capsys, ["data", "download", "lfw", "--dest", str(tmp_path)])
    assert "is not a folder" in err


@pytest.mark.parametrize("command", ["study", "compare", "audit"])
def test_study_results_never_go_inside_the_data_folder(command, data, tmp_path, capsys):
    out = data / "results"
    config = tmp_path / "study.toml"
    config.write_text(
        f'data = "{data}"\noutput = "{out}"\n[systems]\ndefenses = ["cosine"]\n'
        '[[attacks]]\nname = "rule-based"\n'
    )
    argv = {
        "study": ["study", "run", str(config)],
        "compare": ["experiment", "compare", "--quick", "--data", str(data), "--out", str(out)],
        "audit": ["audit", "--backbone", "sface", "--data", str(data), "--out", str(out)],
    }[command]
    assert "inside the data folder" in run_error(capsys, argv)
    assert not out.exists()
