"""The defense comparison on real LFW embeddings, in a reduced configuration.

The undefended nn in the leaking regime (100 training pairs, 300 epochs, no weight decay) must
be found by the attacks well above chance; the cosine predictor (one threshold) must not. The
same seed must give the same numbers, and the report and plots must be written.
"""

import json

import pytest

from facebone.cli import main
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments import compare, get_defense, get_regime, save_results
from facebone.experiments.defenses import list_defenses
from facebone.experiments.leakage import leakage_map, parse_sizes
from facebone.experiments.regimes import balanced_subset
from facebone.reports.experiments import write_compare_report, write_leakage_report

ATTACKS = ["lira", "blackbox-gb"]
SHADOWS = 4
RUN_KEYS = {
    "system",
    "seed",
    "n_train",
    "n_attacker",
    "n_test",
    "n_identity_test",
    "utility",
    "train_accuracy",
    "generalisation_gap",
    "privacy",
    "attacks",
    "best",
    "timings",
}
METRIC_KEYS = {"auc", "balanced_accuracy", "advantage", "tpr_at_fpr", "roc", "n_members"}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("timings", "time_s")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def run_compare(lfw_root, cache_dir, protocol):
    def run():
        return compare(
            lfw_root,
            lambda seed: protocol,
            defenses=["none", "cosine"],
            regimes=["leaking"],
            attacks=ATTACKS,
            n_shadows=SHADOWS,
            seeds={"leaking": [0]},
            cache=EmbeddingCache(cache_dir),
            progress=False,
            n_canaries=0,
        )

    return run


@pytest.fixture(scope="module")
def results(run_compare):
    return run_compare()


def test_results_hold_every_key(results):
    for key in (
        "experiment",
        "seeds",
        "protocol",
        "attacks",
        "n_shadows",
        "defenses",
        "regimes",
        "runs",
        "summary",
        "canaries",
        "goal",
        "frontier",
        "timings",
    ):
        assert key in results
    assert set(results["runs"]) == {"leaking"}
    assert set(results["runs"]["leaking"]) == {"none", "cosine"}
    for (run,) in results["runs"]["leaking"].values():
        assert set(run) >= RUN_KEYS
        assert run["n_train"] == 100
        assert {"accuracy", "auc", "tar_at_far"} <= set(run["utility"])
        assert set(run["privacy"]) == {"dp", "epsilon", "delta", "noise_multiplier", "tuning"}
        for level in ("pair", "identity"):
            assert set(run["attacks"][level]) == set(ATTACKS)
            for metrics in run["attacks"][level].values():
                assert set(metrics) >= METRIC_KEYS
                assert set(metrics["tpr_at_fpr"]) == {"0.01", "0.001"}
                assert metrics["shadows"] == SHADOWS and metrics["queries"] == 1
        # members are exactly the training pairs
        assert run["attacks"]["pair"]["lira"]["n_members"] == run["n_train"]
        assert run["attacks"]["pair"]["lira"]["n_nonmembers"] == run["n_test"]
    assert set(results["goal"]["defenses"]) == {"none", "cosine"}
    assert results["canaries"] == {}
    json.dumps(results)  # serialisable


def test_undefended_leaking_system_is_attacked_above_chance(results):
    (run,) = results["runs"]["leaking"]["none"]
    # Measured: LiRA pair AUC ~0.74, identity ~0.77 with 4 shadows; chance bound ~0.56.
    assert run["attacks"]["pair"]["lira"]["auc"] > 0.64
    assert run["best"]["identity"]["auc"] > 0.64
    assert run["utility"]["accuracy"] > 0.95
    assert run["privacy"]["dp"] is False
    summary = results["summary"]["leaking"]["none"]
    assert summary["levels"]["pair"]["attacks"]["lira"]["auc"]["mean"] == pytest.approx(
        run["attacks"]["pair"]["lira"]["auc"]
    )
    assert not results["goal"]["defenses"]["none"]["meets"]


def test_cosine_predictor_leaks_near_chance(results):
    (run,) = results["runs"]["leaking"]["cosine"]
    # Measured: every attack within ~0.1 of 0.5 (below, not above: population differences).
    for level in ("pair", "identity"):
        for metrics in run["attacks"][level].values():
            assert abs(metrics["auc"] - 0.5) < 0.15
    assert run["best"]["pair"]["auc"] < 0.58
    assert run["utility"]["accuracy"] > 0.97


def test_same_seed_gives_the_same_numbers(results, run_compare):
    assert _without_timings(run_compare()) == _without_timings(results)


def test_report_and_plots_are_written(results, tmp_path):
    save_results(results, tmp_path / "results.json")
    written = write_compare_report(results, tmp_path)
    assert (tmp_path / "report.md").is_file()
    assert (tmp_path / "report-roc-leaking-pair.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == {"leaking": [0]}
    text = (tmp_path / "report.md").read_text()
    assert "**Meet the goal:**" in text and "`cosine`" in text and "TPR" in text
    assert "## Chance bound" in text
    assert {p.name for p in written} == {
        "report.html",
        "report.md",
        "report-roc-leaking-pair.png",
        "report-roc-leaking-identity.png",
        "report-frontier.png",
    }
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    # `facebone report` reads the comparison's results.json too.
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "again.html")]) == 0
    assert "**Meet the goal:**" in (tmp_path / "again.md").read_text()


def test_leakage_map_cell_and_report(lfw_root, cache_dir, protocol, tmp_path):
    results = leakage_map(
        lfw_root,
        lambda seed: protocol,
        sizes=[100],
        epochs=[300],
        attacks=["lira"],
        n_shadows=2,
        cache=EmbeddingCache(cache_dir),
        progress=False,
    )
    cell = results["cells"]["100"]["300"]
    assert cell["n_train"] == 100 and cell["epochs"] == 300
    assert cell["best"]["pair"]["auc"] > 0.6
    write_leakage_report(results, tmp_path)
    assert (tmp_path / "report-leakage-heatmap.png").is_file()
    assert "pairs \\ epochs" in (tmp_path / "report.md").read_text()


def test_regime_subsets_are_balanced_and_seeded(protocol):
    regime = get_regime("leaking")
    first = regime.training_pairs(protocol["target_train"], seed=0)
    assert first == regime.training_pairs(protocol["target_train"], seed=0)
    assert first != regime.training_pairs(protocol["target_train"], seed=1)
    assert sum(p.label for p in first) == 50 and len(first) == 100
    attacker = regime.attacker_pairs(protocol["attacker"], len(first), seed=0)
    assert len(attacker) == 200
    assert get_regime("default").training_pairs(protocol["target_train"], 0) == list(
        protocol["target_train"]
    )
    assert len(balanced_subset(protocol["attacker"], 10_000, None)) == len(protocol["attacker"])


def test_defenses_cover_every_policy():
    multi = [
        get_defense(d) for d in list_defenses() if d.startswith("multi-") and "cosine" not in d
    ]
    assert {d.assign for d in multi} == {"round-robin", "random", "all"}
    assert {d.infer for d in multi} == {"random", "fixed", "ensemble"}
    params = get_defense("dp-eps1").system_params({"epochs": 300}, seed=3)
    assert params["predictor_params"] == {"epochs": 300, "dp_epsilon": 1.0}
    assert params["seed"] == 3
    assert get_defense("cosine").system_params({"epochs": 300}, 0)["predictor_params"] == {}


def test_unknown_names_are_errors_listing_valid_ones():
    with pytest.raises(FaceBoneError, match="multi-all-random"):
        get_defense("nope")
    with pytest.raises(FaceBoneError, match="leaking"):
        get_regime("nope")
    with pytest.raises(FaceBoneError, match="'all'"):
        parse_sizes("100,lots")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--defenses", "none,bogus"], "unknown defense 'bogus'"),
        (["--regimes", "overfit"], "unknown regime 'overfit'"),
        (["--attacks", "lira,magic"], "unknown attack 'magic'"),
        (["--shadows", "1"], "at least 2"),
    ],
)
def test_cli_bad_input_exits_2(lfw_root, tmp_path, capsys, extra, message):
    argv = ["experiment", "compare", "--data", str(lfw_root), "--out", str(tmp_path / "o")]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_leakage_bad_sizes_exit_2(lfw_root, tmp_path, capsys):
    argv = ["experiment", "leakage", "--data", str(lfw_root), "--out", str(tmp_path / "o")]
    assert main([*argv, "--sizes", "100,lots"]) == 2
    assert "'lots'" in capsys.readouterr().err
    assert main([*argv[:3], "/nonexistent", *argv[4:]]) == 2
