"""The defense comparison and the leakage map on real LFW embeddings, in reduced
configurations, as the `facebone experiment` shortcuts run them through the study engine.

The undefended nn in the leaking regime (100 training pairs, 300 epochs, no weight decay) must
be found by the attacks well above chance; the cosine predictor (one threshold) must not. The
study folder must rerun to the same numbers, and the report and plots must be written.
"""

import json
import tomllib

import pytest

from facebone.cli import main
from facebone.errors import FaceBoneError
from facebone.experiments import get_defense, get_regime
from facebone.experiments.defenses import list_defenses
from facebone.experiments.regimes import balanced_subset
from facebone.reports.sources import load_results
from facebone.studies.config import load_config
from facebone.studies.shortcuts import (
    LEAKAGE_EPOCHS,
    LEAKAGE_SIZES,
    leakage_regimes,
    parse_sizes,
    shipped_config,
)
from facebone.studies.store import ResultStore

ATTACKS = ["lira", "blackbox-gb"]
SHADOWS = 4


def _figures(records):
    """What the records measured, without timings (which differ run to run)."""
    return sorted(
        [(a.key, a.auc, a.tpr_at_fpr, a.roc_fpr, a.roc_tpr) for a in records.attacks]
    ), sorted([(u.key, u.accuracy, u.auc, u.train_accuracy) for u in records.utility])


@pytest.fixture(scope="module")
def compared(lfw_root, cache_dir, tmp_path_factory):
    """`experiment compare` reduced to two defenses, the leaking regime, one seed, two
    attacks with 4 shadows and no canary audit: its study folder."""
    out = tmp_path_factory.mktemp("compare") / "study"
    argv = ["experiment", "compare", "--data", str(lfw_root), "--cache", str(cache_dir)]
    argv += ["--out", str(out), "--defenses", "none,cosine", "--regimes", "leaking"]
    argv += ["--leaking-seeds", "0", "--attacks", ",".join(ATTACKS), "--shadows", str(SHADOWS)]
    assert main([*argv, "--canaries", "0", "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def records(compared):
    return ResultStore(compared).records()


def _record(records, system, attack, level):
    (found,) = [
        a
        for a in records.attacks
        if (a.key.system, a.key.attack, a.key.level) == (system, attack, level)
    ]
    return found


def test_the_shortcut_stores_every_cell(records):
    cells = {(a.key.regime, a.key.system, a.key.attack, a.key.level) for a in records.attacks}
    assert cells == {
        ("leaking", s, a, level)
        for s in ("none", "cosine")
        for a in ATTACKS
        for level in ("pair", "identity")
    }
    for utility in records.utility:
        assert utility.n_train == 100 and utility.key.seed == 0
    for record in records.attacks:
        assert record.shadows == SHADOWS and record.queries == 1
        assert set(record.tpr_at_fpr) == {"0.01", "0.001"}
        if record.key.level == "pair":
            # members are exactly the training pairs, non-members the test pairs
            assert record.n_members == 100 and record.n_nonmembers > 100


def test_undefended_leaking_system_is_attacked_above_chance(compared, records):
    # Measured: LiRA pair AUC ~0.74, identity ~0.77 with 4 shadows; chance bound ~0.56.
    assert _record(records, "none", "lira", "pair").auc > 0.64
    assert max(_record(records, "none", a, "identity").auc for a in ATTACKS) > 0.64
    (utility,) = [u for u in records.utility if u.key.system == "none"]
    assert utility.accuracy > 0.95 and utility.epsilon is None
    goal = load_results(compared).results["goal"]
    assert not goal["defenses"]["none"]["meets"]


def test_cosine_predictor_leaks_near_chance(records):
    # Measured: every attack within ~0.1 of 0.5 (below, not above: population differences).
    for record in records.attacks:
        if record.key.system == "cosine":
            assert abs(record.auc - 0.5) < 0.15
    assert _record(records, "cosine", "lira", "pair").auc < 0.58
    (utility,) = [u for u in records.utility if u.key.system == "cosine"]
    assert utility.accuracy > 0.97


@pytest.mark.slow
def test_the_recorded_configuration_reruns_to_the_same_numbers(
    compared, records, cache_dir, tmp_path
):
    """config.toml in the study folder holds the shortcut's options: `study run` on it
    elsewhere gives the same figures (the same seed, the same numbers)."""
    written = tomllib.loads((compared / "config.toml").read_text())
    assert written["systems"] == {"defenses": ["none", "cosine"], "regimes": ["leaking"]}
    assert written["splits"]["regime_seeds"] == {"leaking": [0]}
    assert [(a["name"], a["shadows"]) for a in written["attacks"]] == [
        (a, SHADOWS) for a in ATTACKS
    ]
    again = tmp_path / "again"
    argv = ["study", "run", str(compared / "config.toml"), "--out", str(again)]
    assert main([*argv, "--cache", str(cache_dir), "--json"]) == 0
    assert _figures(ResultStore(again).records()) == _figures(records)


def test_report_and_plots_are_written(compared, tmp_path):
    assert (compared / "report-roc-leaking-pair.png").stat().st_size > 10_000
    text = (compared / "report.md").read_text()
    assert "**Meet the goal:**" in text and "`cosine`" in text and "TPR" in text
    assert "## Chance bound" in text and "FaceBone defense comparison" in text
    assert not list(compared.glob(".*.tmp"))  # atomic writes leave no temporaries
    # `facebone report` reads the study folder too.
    assert main(["report", str(compared), "--out", str(tmp_path / "again.html")]) == 0
    assert "**Meet the goal:**" in (tmp_path / "again.md").read_text()


@pytest.mark.slow
def test_leakage_shortcut_cell_and_heatmap(lfw_root, cache_dir, tmp_path, capsys):
    out = tmp_path / "leakage"
    argv = ["experiment", "leakage", "--data", str(lfw_root), "--cache", str(cache_dir)]
    argv += ["--out", str(out), "--sizes", "100", "--epochs", "300", "--attacks", "lira"]
    assert main([*argv, "--shadows", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    records = ResultStore(out).records()
    assert {u.key.regime for u in records.utility} == {"n100-e300"}
    assert all(u.n_train == 100 for u in records.utility)
    assert _record(records, "none", "lira", "pair").auc > 0.6
    assert (out / "report-leakage-heatmap.png").stat().st_size > 10_000
    assert "pairs \\ epochs" in (out / "report.md").read_text()


def test_leakage_defaults_are_the_shipped_configuration():
    shipped = load_config(shipped_config("leakage"))
    made = {r["name"]: r for r in leakage_regimes(LEAKAGE_SIZES, LEAKAGE_EPOCHS)}
    assert list(shipped.regimes) == list(made)
    for name, regime in shipped.regimes.items():
        assert regime.n_train == made[name].get("n_train")
        assert regime.nn_params == {"epochs": made[name]["epochs"], "weight_decay": 0.0}


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
        (["--shadows", "1"], "--shadows 1: lira needs at least 2 shadows"),
        (["--canaries", "6"], "multiple of 4"),
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
