"""Issue 16: values out of an option's declared range fail in one line before any work, and
`--json` output is strict JSON (NaN as null)."""

import json

import pytest

import test_hardening
from facebone.cli import main
from facebone.params import SEED
from test_hardening import run_error, train_args

data = test_hardening.data  # issue 8's fixtures: real LFW photos of four people, pairs of them
pairs_csv = test_hardening.pairs_csv


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--predictor", "nn", "--dp-epsilon", "inf"], "--dp-epsilon must be a number in (0, 100]"),
        (["--predictor", "nn", "--dp-epsilon", "nan"], "--dp-epsilon must be a number in (0, 100]"),
        # Opacus's noise search ran for ever: 1000 over 5 min, and 1e308 too.
        (
            ["--predictor", "nn", "--dp-epsilon", "1000"],
            "--dp-epsilon must be a number in (0, 100]",
        ),
        (["--predictor", "nn", "--epochs", "0"], "--epochs must be a whole number in [1, "),
        (["--predictor", "nn", "--hidden", "100000"], "--hidden must be 1 to 16 layer widths"),
        (["--predictor", "nn", "--relax-loss", "-1"], "--relax-loss must be a number > 0"),
    ],
    ids=["epsilon-inf", "epsilon-nan", "epsilon-1000", "no-epochs", "huge-layer", "negative-alpha"],
)
def test_train_options_out_of_range_fail_before_the_work(
    extra, message, data, tmp_path, cache_dir, capsys
):
    missing = tmp_path / "missing.csv"  # read after the options are checked, never reached
    err = run_error(capsys, [*train_args(data, missing, tmp_path / "model", cache_dir), *extra])
    assert message in err
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("seed", [str(10**23), "-5", str(SEED.high + 1), "1.5"])
@pytest.mark.parametrize("command", ["train", "pairs"])
def test_a_seed_out_of_range_is_a_usage_error(command, seed, data, tmp_path, cache_dir, capsys):
    argv = {
        "train": train_args(data, tmp_path / "missing.csv", tmp_path / "model", cache_dir),
        "pairs": ["pairs", "--data", str(data), "--out", str(tmp_path / "pairs")],
    }[command]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--seed", seed])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "argument --seed" in err
    assert not (tmp_path / "model").exists() and not (tmp_path / "pairs").exists()


def test_json_output_has_no_bare_nan(data, pairs_csv, tmp_path, cache_dir, capsys):
    model = tmp_path / "model"
    assert main(train_args(data, pairs_csv, model, cache_dir)) == 0
    same_only = tmp_path / "same.csv"
    rows = [line for line in pairs_csv.read_text().splitlines()[1:] if line.endswith(",1")]
    same_only.write_text("image1,image2,label\n" + "\n".join(rows) + "\n")
    capsys.readouterr()
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--pairs", str(same_only)]
    assert main([*argv, "--cache", str(cache_dir), "--json"]) == 0

    def refuse(constant: str):
        raise AssertionError(f"bare {constant} in the JSON output")

    result = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert result["auc"] is None  # one class only: no ROC curve
    assert result["accuracy"] > 0.5


def test_evaluate_of_a_random_inference_system_is_reproducible(
    data, pairs_csv, tmp_path, cache_dir, capsys
):
    model = tmp_path / "multi"
    argv = train_args(data, pairs_csv, model, cache_dir)
    assert main([*argv, "--backbones", "sface,dlib", "--mitigation", "multi"]) == 0
    evaluate = ["evaluate", "--model", str(model), "--data", str(data), "--pairs", str(pairs_csv)]
    evaluate += ["--cache", str(cache_dir), "--json"]
    capsys.readouterr()
    runs = []
    for _ in range(3):
        assert main(evaluate) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1] == runs[2] and runs[0]["expected_over_draws"] is True
    (tn, fp), (fn, tp) = runs[0]["confusion_matrix"]
    assert tn + fp + fn + tp == pytest.approx(runs[0]["n_pairs"])


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "1000"])
def test_audit_dp_epsilon_is_checked_as_the_nn_predictor_checks_it(value, data, tmp_path, capsys):
    out = tmp_path / "audit"
    argv = ["audit", "--backbone", "sface", "--data", str(data), "--out", str(out)]
    err = run_error(capsys, [*argv, "--dp-epsilon", value])
    # The flag, not the temporary study configuration the audit writes.
    assert "--dp-epsilon must be 0 (no DP system) or a number in (0, 100]" in err, err
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "0"])
def test_a_download_timeout_must_be_a_positive_number_of_seconds(value, tmp_path, capsys):
    argv = ["data", "download", "lfw", "--dest", str(tmp_path / "d"), "--timeout", value]
    # A closed local port: the check must come first, and nothing is fetched.
    err = run_error(capsys, [*argv, "--url", "http://127.0.0.1:9/lfw.tgz"])
    assert "--timeout must be a positive number of seconds" in err
    assert not (tmp_path / "d").exists()
