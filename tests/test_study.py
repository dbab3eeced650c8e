"""Studies on real LFW faces: a small study with attacks of all four threat families end to
end on the local and the Ray executor, a killed run resumed, configuration errors before any
work, and exports."""

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facebone.cli import main
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.studies.config import load_config
from facebone.studies.engine import run_study
from facebone.studies.executors import LocalExecutor, RayExecutor
from facebone.studies.store import DATABASE, ResultStore

REPO = Path(__file__).resolve().parents[1]

# Two systems (the cosine threshold, and an nn that over-fits 60 pairs in 30 epochs), three
# split seeds, two membership attacks with 4 shadows each at pair level, and small attacks of
# the other three families: six targets, seconds each.
TINY = """
name = "tiny"
data = "{data}"
output = "out"

[splits]
seeds = [0, 1, 2]

[systems]
defenses = ["cosine"]
regimes = ["small"]

[[systems.table]]
name = "small-nn"
backbones = ["sface"]
predictor = "nn"

[[regimes]]
name = "small"
n_train = 60
epochs = 30
weight_decay = 0.0

[[attacks]]
name = "lira-online"
shadows = 4
levels = ["pair"]

[[attacks]]
name = "blackbox-gb"
shadows = 4
levels = ["pair"]

[[attacks]]
name = "decoder"
budget = 2
targets = 32

[[attacks]]
name = "attribute-template"
targets = 96

[[attacks]]
name = "attribute-blackbox"
targets = 32
references = 8

[[attacks]]
name = "surrogate"
budgets = [100]
"""


def _figures(records):
    """Everything a record measured, without timings (which differ run to run)."""
    return (
        [
            (a.key, a.auc, a.advantage, a.balanced_accuracy, a.tpr_at_fpr, a.roc_fpr, a.roc_tpr)
            for a in records.attacks
        ]
        + [(u.key, u.accuracy, u.auc, u.train_accuracy, u.params) for u in records.utility]
        + [(t.key, t.value, t.chance, t.goal, t.n_targets) for t in records.threats]
    )


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory, lfw_root) -> Path:
    path = tmp_path_factory.mktemp("study") / "tiny.toml"
    path.write_text(TINY.format(data=lfw_root))
    return path


@pytest.fixture(scope="module")
def local_records(tiny_config, cache_dir, tmp_path_factory):
    """The tiny study, uninterrupted, on the local executor."""
    executor = LocalExecutor(EmbeddingCache(cache_dir))
    try:
        return run_study(
            load_config(tiny_config, output=tmp_path_factory.mktemp("local")),
            executor,
            progress=False,
        )
    finally:
        executor.close()


def test_study_stores_every_cell_with_real_figures(local_records):
    keys = {(a.key.system, a.key.attack, a.key.seed) for a in local_records.attacks}
    assert keys == {
        (s, a, seed)
        for s in ("cosine", "small-nn")
        for a in ("lira-online", "blackbox-gb")
        for seed in (0, 1, 2)
    }
    assert len(local_records.attacks) == len(keys)  # pair level only, as configured
    assert {a.key.level for a in local_records.attacks} == {"pair"}
    assert len(local_records.utility) == 6
    for utility in local_records.utility:
        # SFace on identity-disjoint LFW pairs: a threshold is near perfect; an nn trained on
        # 60 pairs generalises worse, but well above chance.
        assert utility.accuracy > (0.95 if utility.key.system == "cosine" else 0.7)
        assert utility.n_train == 60
    for record in local_records.attacks:
        assert record.n_members == 60 and record.n_nonmembers > 60
        assert record.shadows == 4 and record.chance.auc > 0.5
        assert record.roc_fpr[0] == 0.0 and record.roc_fpr[-1] == 1.0
    lira = {
        system: [
            a.auc
            for a in local_records.attacks
            if (a.key.system, a.key.attack) == (system, "lira-online")
        ]
        for system in ("cosine", "small-nn")
    }
    # The over-fitted nn leaks; a one-parameter threshold cannot remember its members.
    assert sum(lira["small-nn"]) / 3 > sum(lira["cosine"]) / 3 + 0.1
    assert local_records.study["name"] == "tiny"


def test_study_runs_every_threat_family_per_target(local_records):
    threats = {
        (t.key.system, t.key.seed, t.key.family, t.key.attack) for t in local_records.threats
    }
    assert threats == {
        (system, seed, family, attack)
        for system in ("cosine", "small-nn")
        for seed in (0, 1, 2)
        for family, attack in (
            ("inversion", "decoder"),
            ("attribute", "attribute-template"),
            ("attribute", "attribute-blackbox"),
            ("extraction", "surrogate"),
        )
    }
    by_attack: dict[str, list] = {}
    for record in local_records.threats:
        by_attack.setdefault(record.key.attack, []).append(record)
        assert 0.0 <= record.value <= 1.0 and 0.0 <= record.chance <= 1.0
    # Unprotected SFace templates give gender away (LFW, names as labels: BA about 0.7).
    template = [r.value for r in by_attack["attribute-template"]]
    assert sum(template) / len(template) > max(r.chance for r in by_attack["attribute-template"])
    assert all(
        r.goal == 0.55 and r.key.setting == "stolen-store" for r in by_attack["attribute-template"]
    )
    # A copy from 100 answers decides as the target on nearly every unseen pair.
    assert all(r.value > 0.9 and r.key.setting == "budget 100" for r in by_attack["surrogate"])
    assert all(r.n_targets == 32 and r.goal == 0.005 for r in by_attack["decoder"])


@pytest.mark.slow
def test_ray_executor_gives_the_local_numbers(tiny_config, cache_dir, local_records, tmp_path):
    executor = RayExecutor(EmbeddingCache(cache_dir), num_cpus=2)
    try:
        records = run_study(load_config(tiny_config, output=tmp_path), executor, progress=False)
    finally:
        executor.close()
    assert _figures(records) == _figures(local_records)


def _rows(folder: Path) -> int:
    try:
        with sqlite3.connect(folder / DATABASE, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM utility").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_lost_or_repeated_rows(
    tiny_config, cache_dir, local_records, tmp_path
):
    out = tmp_path / "resumed"
    command = [sys.executable, "-m", "facebone", "study", "run", str(tiny_config)]
    command += ["--out", str(out), "--cache", str(cache_dir), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while _rows(out) == 0 and process.poll() is None:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    stored = _rows(out)
    assert 1 <= stored < 6, "the kill should land after the first target and before the last"
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    assert json.loads(finished.stdout)["targets"] == 6
    store = ResultStore(out)
    with sqlite3.connect(out / DATABASE) as connection:
        assert connection.execute("SELECT COUNT(*) FROM attacks").fetchone()[0] == 12
    assert _figures(store.records()) == _figures(local_records)


def test_export_json_and_csv(local_records, tiny_config, tmp_path, capsys):
    folder = Path(local_records.study["output"])
    assert main(["study", "export", str(folder), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(local_records.attacks)
    first = local_records.attacks[0]
    assert (rows[0]["system"], rows[0]["attack"], float(rows[0]["auc"])) == (
        first.key.system,
        first.key.attack,
        first.auc,
    )
    target = tmp_path / "results.json"
    assert main(["study", "export", str(folder), "--format", "json", "--out", str(target)]) == 0
    exported = json.loads(target.read_text())
    assert len(exported["attacks"]) == len(local_records.attacks)
    assert exported["attacks"][0]["roc_tpr"] == list(first.roc_tpr)
    assert main(["study", "export", str(folder), "--out", str(target)]) == 2  # no --force
    assert "exists" in capsys.readouterr().err


def _overlapping_files(folder: Path, data: Path) -> str:
    """Pair files whose target_train and attacker share a person."""
    person = sorted(p for p in data.iterdir() if len(list(p.iterdir())) >= 2)[0]
    a, b = sorted(f.name for f in person.iterdir())[:2]
    pair = f"image1,image2,label\n{person.name}/{a},{person.name}/{b},1\n"
    for role in ("target_train", "target_test", "attacker"):
        (folder / f"{role}.csv").write_text(pair)
    return (
        "[splits]\nfiles = { target_train = 'target_train.csv', target_test = "
        "'target_test.csv', attacker = 'attacker.csv' }\n"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, d, f: t.replace('backbones = ["sface"]', 'backbones = ["nope"]'), "nope"),
        (lambda t, d, f: t.replace(str(d), str(d / "missing")), "data: data folder"),
        (
            lambda t, d, f: t.replace("seeds = [0, 1, 2]", "fractions = [0.5, 0.4, 0.3]"),
            "splits.fractions: fractions add up to 1.2 > 1: the splits would overlap",
        ),
        (
            lambda t, d, f: t.replace("[splits]\nseeds = [0, 1, 2]\n", _overlapping_files(f, d)),
            "the splits overlap",
        ),
        (lambda t, d, f: t.replace('name = "tiny"', "name = tiny"), "bad TOML: Invalid value"),
        (lambda t, d, f: t.replace('"cosine"', '"cosine", "no-such"'), "systems.defenses[1]"),
        (
            lambda t, d, f: t.replace("shadows = 4", "shadows = 2", 1),
            "attacks[0].shadows: lira-online needs at least 4 shadows, got 2",
        ),
        (lambda t, d, f: t + "\nextra = 1\n", "extra: unknown key"),
        # The nn predictor's options, as it declares them (`NNPredictor._parameter_constraints`).
        (
            lambda t, d, f: t.replace("epochs = 30", "learning_rate = 0.01"),
            "regimes[0].learning_rate: unknown key; a regime takes name, description, n_train",
        ),
        (
            lambda t, d, f: t.replace("epochs = 30", "epochs = nan"),
            "regimes[0].epochs: must be a whole number in [1, 100000], got nan",
        ),
        (
            lambda t, d, f: t.replace("epochs = 30", "lr = -0.1"),
            "regimes[0].lr: must be a number > 0, got -0.1",
        ),
        (
            lambda t, d, f: t.replace(
                'predictor = "nn"', 'predictor = "nn"\npredictor_params = { lr = 0.01, x = 1 }'
            ),
            "systems.table[0].predictor_params.x: unknown option of the nn predictor; its "
            "options are: hidden, epochs, lr,",
        ),
        (
            lambda t, d, f: t.replace(
                'predictor = "nn"', 'predictor = "nn"\npredictor_params = { hidden = [1000000000] }'
            ),
            "systems.table[0].predictor_params.hidden: must be 1 to 16 layer widths",
        ),
        (
            lambda t, d, f: t.replace('predictor = "nn"', 'predictor = "nn"\ndp_epsilon = nan'),
            "systems.table[0].dp_epsilon: must be a number in (0, 100], got nan",
        ),
        (
            lambda t, d, f: t.replace("shadows = 4", "shadows = 1000000000", 1),
            "attacks[0].shadows: at most 1024, got 1000000000",
        ),
        (
            lambda t, d, f: t.replace('levels = ["pair"]', "levels = []", 1),
            "attacks[0].levels: name at least one of pair, identity",
        ),
        (
            lambda t, d, f: t.replace('backbones = ["sface"]', f'backbones = ["onnx:{f}/no.onnx"]'),
            "the model file",
        ),
        (
            lambda t, d, f: t.replace("seeds = [0, 1, 2]", "seeds = [100000000000000000000000]"),
            "splits.seeds: expected a non-empty list of seeds, each a whole number in [0, ",
        ),
        (
            lambda t, d, f: t.replace('output = "out"', f'output = "{d}/out"'),
            "output: the results folder",
        ),
    ],
    ids=[
        "unknown-backbone",
        "missing-data",
        "overlapping-fractions",
        "overlapping-files",
        "bad-toml",
        "unknown-defense",
        "too-few-shadows",
        "unknown-key",
        "regime-learning-rate",
        "regime-nan-epochs",
        "regime-negative-lr",
        "unknown-predictor-option",
        "huge-hidden-layer",
        "nan-epsilon",
        "huge-shadows",
        "no-levels",
        "missing-onnx-file",
        "huge-seed",
        "output-inside-data",
    ],
)
def test_bad_config_is_one_line_and_exit_2_before_any_work(
    change, message, lfw_root, tmp_path, capsys
):
    config = tmp_path / "bad.toml"
    config.write_text(change(TINY.format(data=lfw_root), lfw_root, tmp_path))
    assert main(["study", "run", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error, error
    assert error.startswith(f"facebone: error: {config}")
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_toml_names_its_line(lfw_root, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(TINY.format(data=lfw_root).replace("[[attacks]]", "[[attacks]", 1))
    with pytest.raises(FaceBoneError, match=r"line \d+"):
        load_config(config)


def test_a_folder_of_another_study_or_of_other_files_is_refused(
    local_records, tiny_config, tmp_path
):
    other = tmp_path / "other.toml"
    other.write_text(tiny_config.read_text().replace("seeds = [0, 1, 2]", "seeds = [0]"))
    with pytest.raises(FaceBoneError, match="another study configuration"):
        run_study(load_config(other, output=local_records.study["output"]), LocalExecutor())
    (tmp_path / "config.toml").write_text("a user's own file\n")
    with pytest.raises(FaceBoneError, match="holds other files and no study results"):
        run_study(load_config(other, output=tmp_path), LocalExecutor())
    assert (tmp_path / "config.toml").read_text() == "a user's own file\n"


def test_shipped_configs_are_valid():
    counts = {
        name: len(load_config(REPO / "configs" / f"{name}.toml").targets())
        for name in ("quick", "compare", "leakage")
    }
    # compare: 15 defenses x (3 default + 5 leaking seeds); leakage: 4 sizes x 3 lengths.
    assert counts == {"quick": 8, "compare": 120, "leakage": 12}


def test_explicit_split_files_are_the_protocol(lfw_root, cache_dir, protocol, tmp_path):
    from facebone.data.pairs import write_pairs

    for role, pairs in protocol.items():
        write_pairs(tmp_path / f"{role}.csv", pairs)
    config = tmp_path / "files.toml"
    config.write_text(
        f'data = "{lfw_root}"\noutput = "out"\n[splits]\nseeds = [3]\n'
        "files = { target_train = 'target_train.csv', target_test = 'target_test.csv', "
        "attacker = 'attacker.csv' }\n"
        '[systems]\ndefenses = ["cosine"]\n[[attacks]]\nname = "rule-based"\n'
    )
    executor = LocalExecutor(EmbeddingCache(cache_dir))
    try:
        records = run_study(load_config(config), executor, progress=False)
    finally:
        executor.close()
    (utility,) = records.utility
    assert utility.key.seed == 3 and utility.n_test == len(protocol["target_test"])
    assert utility.n_train == len(protocol["target_train"])  # the default regime: all pairs
    assert {a.key.level for a in records.attacks} == {"pair", "identity"}


def test_quick_preset_overrides_seeds_and_attack_options(tiny_config, tmp_path):
    text = tiny_config.read_text() + '\n[quick]\noutput = "quick-out"\n[quick.splits]\n'
    text += "seeds = [0]\n[quick.attacks.decoder]\nbudget = 1\ntargets = 8\n"
    path = tmp_path / "preset.toml"
    path.write_text(text)
    full, quick = load_config(path), load_config(path, quick=True)
    assert full.seeds() == [0, 1, 2] and quick.seeds() == [0]
    assert quick.output == tmp_path / "quick-out"
    decoder = {a.name: dict(a.options) for a in quick.attacks}["decoder"]
    assert decoder == {"budget": 1, "targets": 8}
    assert {a.name: dict(a.options) for a in full.attacks}["decoder"] == {
        "budget": 2,
        "targets": 32,
    }
    with pytest.raises(FaceBoneError, match=r"no \[quick\] table"):
        load_config(tiny_config, quick=True)
    path.write_text(text + "[quick.attacks.lira]\nshadows = 2\n")
    with pytest.raises(FaceBoneError, match=r"quick\.attacks\.lira: not an attack of this study"):
        load_config(path)


@pytest.mark.slow
def test_report_leads_with_the_threat_matrix(tiny_config, cache_dir, tmp_path):
    from facebone.reports.sources import write_folder_report

    # The tiny study at both levels (the report's verdict compares them), seed 0 only.
    text = tiny_config.read_text().replace('levels = ["pair"]', 'levels = ["pair", "identity"]')
    path = tmp_path / "both.toml"
    path.write_text(text.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    executor = LocalExecutor(EmbeddingCache(cache_dir))
    try:
        run_study(load_config(path, output=tmp_path / "out"), executor, progress=False)
    finally:
        executor.close()
    write_folder_report(tmp_path / "out", tmp_path / "report.html")
    summary = (tmp_path / "report.md").read_text()
    first = summary.split("\n## ")[1]
    assert first.startswith("Threats x deployments")
    rows = [line for line in first.splitlines() if line.startswith("| `")]
    assert [row.split(" | ")[0] for row in rows] == ["| `cosine`", "| `small-nn`"]
    for row in rows:
        assert "not run" not in row
        for figure in ("AUC", "SAR type I", "fidelity", "gender balanced accuracy"):
            assert figure in row


def _study(config_hash: str) -> dict:
    return {"config_hash": config_hash, "data": "/data"}


def test_a_folder_without_finished_targets_takes_a_corrected_config(tmp_path, local_records):
    """A run that failed after its folder was written leaves no finished target: the
    corrected configuration starts there afresh; finished results need --force to go."""
    ResultStore.create(tmp_path, _study("first"), "first")
    store = ResultStore.create(tmp_path, _study("corrected"), "corrected")
    assert store.study()["config_hash"] == "corrected" and not store.finished()
    del store  # releases the folder's lock
    finished = Path(local_records.study["output"])
    with pytest.raises(FaceBoneError, match=r"another study configuration.*force"):
        ResultStore.create(finished, _study("another"), "another")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (DATABASE, "study.json", "config.toml"):
        (copy / name).write_bytes((finished / name).read_bytes())
    fresh = ResultStore.create(copy, _study("another"), "another", force=True)
    assert not fresh.finished() and (copy / "config.toml").read_text() == "another"


HOLD_THE_FOLDER = """
import sys, time
from facebone.studies.store import ResultStore
store = ResultStore.create(sys.argv[1], {"config_hash": "held", "data": "/data"}, "")
print("holding", flush=True)
time.sleep(120)
"""


def test_a_second_run_into_a_folder_in_use_is_refused_at_once(tiny_config, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        assert main(["study", "run", str(tiny_config), "--out", str(out), "--force"]) == 2
        error = capsys.readouterr().err
        assert "is in use by another run" in error and len(error.strip().splitlines()) == 1
        assert json.loads((out / "study.json").read_text())["config_hash"] == "held"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# One target attacked at both levels, as the report needs: a study in about a second.
REPORTABLE = """
name = "reportable"
data = "{data}"
output = "out"
[systems]
defenses = ["cosine"]
regimes = ["small"]
[[regimes]]
name = "small"
n_train = 60
[[attacks]]
name = "rule-based"
"""


@pytest.fixture(scope="module")
def reportable(tmp_path_factory, lfw_root, cache_dir) -> Path:
    """The configuration of a small study that was run, in its folder with the results."""
    config = tmp_path_factory.mktemp("reportable") / "reportable.toml"
    config.write_text(REPORTABLE.format(data=lfw_root))
    executor = LocalExecutor(EmbeddingCache(cache_dir))
    try:
        run_study(load_config(config), executor, progress=False)
    finally:
        executor.close()
    return config


def _damage(folder: Path, how: str) -> None:
    database = folder / DATABASE
    if how == "truncated":
        database.write_bytes(database.read_bytes()[:1500])
    elif how == "garbage":
        database.write_bytes(b"not a database, " * 500)
    elif how == "bad-json-row":
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE utility SET record = '{not json' WHERE rowid = 1")
    elif how == "dropped-table":
        with sqlite3.connect(database) as connection:
            connection.execute("DROP TABLE attacks")
    elif how == "wrong-row":
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE attacks SET metrics = '[1, 2]' WHERE rowid = 1")
    elif how == "study-list":
        (folder / "study.json").write_text("[]")
    elif how == "canaries":
        (folder / "canaries.json").write_text('{"canaries": [1, 2]}')
    elif how == "inversion":
        (folder / "inversion.json").write_text('{"sar": {"type1": {"0.01": "x"}}, "ssim": []}')
    elif how.startswith("deep-"):  # nested deeper than Python's recursion limit
        deep = "[" * 100_000
        if how == "deep-row":
            with sqlite3.connect(database) as connection:
                connection.execute("UPDATE attacks SET metrics = ? WHERE rowid = 1", (deep,))
        else:
            name = {"deep-study": "study.json", "deep-canaries": "canaries.json"}.get(how)
            (folder / (name or "inversion.json")).write_text(deep)


@pytest.mark.parametrize(
    "how",
    [
        *("truncated", "garbage", "bad-json-row", "dropped-table", "wrong-row", "study-list"),
        "canaries",
        *("inversion", "deep-row", "deep-study", "deep-canaries", "deep-inversion"),
    ],
)
def test_damaged_results_are_one_line_in_every_command(
    how, reportable, cache_dir, tmp_path, capsys
):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in (DATABASE, "study.json", "config.toml"):
        (folder / name).write_bytes((reportable.parent / "out" / name).read_bytes())
    _damage(folder, how)
    commands = {
        "export": ["study", "export", str(folder)],
        "report": ["report", str(folder), "--out", str(tmp_path / "report.html"), "--force"],
        "run": ["study", "run", str(reportable), "--out", str(folder), "--cache", str(cache_dir)],
    }
    # What each damage breaks; the other commands do not read the damaged file.
    breaks = {
        "canaries": {"report"},
        "deep-canaries": {"report"},
        "inversion": set(),
        "deep-inversion": set(),
    }.get(how, set(commands))
    for name, argv in commands.items():
        code = main(argv)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, (name, captured.err)
        assert code == (2 if name in breaks else 0), (name, captured.err)
        if code == 2:
            assert len(captured.err.strip().splitlines()) == 1, (name, captured.err)
