"""`facebone gallery ...` on real LFW photos with the demo's SFace system: enrol, identify,
verify, list, delete, and the one-line errors."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from facebone.cli import main
from facebone.system.model_dir import read_config
from web_images import BLAIR, BLAIR_OTHER, POWELL

STRANGER = "Gerhard_Schroeder/Gerhard_Schroeder_0006.jpg"


@pytest.fixture(scope="module")
def sface_model(demo_workdir):
    return demo_workdir / "defended"


def run(capsys, argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.strip()


def run_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_enrol_identify_verify_list_delete(capsys, tmp_path, sface_model, lfw_root):
    store = str(tmp_path / "people.sqlite")
    base = ["--store", store, "--model", str(sface_model)]
    created = json.loads(run(capsys, ["gallery", "create", *base, "--json"]))
    assert created == {"protection": None, "backbones": ["sface"]}
    assert "already exists" in run_error(capsys, ["gallery", "create", *base])

    powell = run(capsys, ["gallery", "enroll", *base, str(lfw_root / POWELL[0])])
    assert re.fullmatch(r"[0-9a-f]{32}", powell)
    enrolled = run(capsys, ["gallery", "enroll", *base, "--json", str(lfw_root / BLAIR)])
    blair = json.loads(enrolled)["subject"]
    assert json.loads(enrolled) == {"subject": blair, "photos": 1} and blair != powell

    def identify(photo: str, *flags: str) -> str:
        return run(capsys, ["gallery", "identify", *base, *flags, str(lfw_root / photo)])

    assert identify(POWELL[1]) == powell and identify(BLAIR_OTHER) == blair
    assert identify(STRANGER) == "no match"
    assert json.loads(identify(STRANGER, "--json")) == {"match": False, "subject": None}

    def verify(subject: str, photo: str) -> str:
        argv = ["gallery", "verify", *base, "--subject", subject, str(lfw_root / photo)]
        return run(capsys, argv)

    assert verify(powell, POWELL[1]) == "same person"
    assert verify(powell, BLAIR_OTHER) == "different people"

    # A second photo of Powell joins his subject; the same photo again adds nothing.
    photos = [str(lfw_root / POWELL[1]), str(lfw_root / POWELL[0])]
    assert run(capsys, ["gallery", "enroll", *base, "--subject", powell, *photos]) == powell
    listed = json.loads(run(capsys, ["gallery", "list", "--store", store, "--json"]))
    faces = {row["subject"]: row["faces"] for row in listed["subjects"]}
    assert faces == {powell: 2, blair: 1}
    text = run(capsys, ["gallery", "list", "--store", store])
    assert f"{powell}  2 faces" in text and f"{blair}  1 face " in text

    deleted = json.loads(run(capsys, ["gallery", "delete", *base, "--subject", blair, "--json"]))
    assert deleted["subject"] == blair and deleted["faces_removed"] == 1
    assert deleted["retrained"] is False and deleted["held"] is None  # no data: not checked
    assert identify(BLAIR_OTHER) == "no match" and identify(POWELL[1]) == powell
    assert run(capsys, ["gallery", "list", "--store", store, "--json"]).count('"subject"') == 1


def test_gallery_errors_are_one_line(capsys, tmp_path, sface_model, lfw_root):
    store = str(tmp_path / "people.sqlite")
    base = ["--store", store, "--model", str(sface_model)]
    assert "no such file" in run_error(
        capsys, ["gallery", "enroll", *base, str(tmp_path / "none.jpg")]
    )
    inside = ["--store", str(sface_model / "g.sqlite"), "--model", str(sface_model)]
    assert "inside --model" in run_error(capsys, ["gallery", "create", *inside])
    assert not (sface_model / "g.sqlite").exists()
    run(capsys, ["gallery", "create", *base])
    unknown = ["--subject", "0" * 32, str(lfw_root / BLAIR)]
    assert "no subject" in run_error(capsys, ["gallery", "verify", *base, *unknown])
    assert "no subject" in run_error(capsys, ["gallery", "enroll", *base, *unknown])
    assert "no subject" in run_error(capsys, ["gallery", "delete", *base, "--subject", "0" * 32])
    (tmp_path / "notes.txt").write_text("not a gallery")
    assert "gallery" in run_error(
        capsys, ["gallery", "list", "--store", str(tmp_path / "notes.txt")]
    )
    # Nothing was enrolled by the failed commands.
    assert run(capsys, ["gallery", "list", "--store", store]) == "no subjects"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    """An SFace + cosine model trained on the protocol's target pairs, and those pairs."""
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("erasure")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(root / "pairs"), "--seed", "0"]) == 0
    )
    pairs = root / "pairs" / "target_train.csv"
    argv = ["train", "--data", str(lfw_root), "--cache", str(cache_dir), "--pairs", str(pairs)]
    argv += ["--backbones", "sface", "--predictor", "cosine", "--out", str(root / "model")]
    assert main(argv) == 0
    return root / "model", pairs


@pytest.mark.slow
def test_delete_verify_retrains_the_model_without_the_person(
    capsys, tmp_path, trained, lfw_root, cache_dir
):
    """A person of the training pairs, enrolled from a photo of theirs outside the pairs, is
    deleted: the model is retrained without their pairs and the erasure checked."""
    model, pairs = trained
    with pairs.open() as file:
        rows = list(csv.DictReader(file))
    used = {path for row in rows for path in (row["image1"], row["image2"])}
    counts = Counter(path.split("/")[0] for path in used)
    person = next(
        name
        for name, count in counts.most_common()
        if any(f"{name}/{photo.name}" not in used for photo in (lfw_root / name).iterdir())
    )
    photo = next(
        p for p in sorted((lfw_root / person).iterdir()) if f"{person}/{p.name}" not in used
    )
    store = str(tmp_path / "people.sqlite")
    base = ["--store", store, "--model", str(model)]
    run(capsys, ["gallery", "create", *base])
    subject = run(capsys, ["gallery", "enroll", *base, str(photo)])
    before = read_config(model)["training_pairs_sha256"]
    erasure = ["--data", str(lfw_root), "--pairs", str(pairs), "--cache", str(cache_dir)]
    erasure += ["--pairs-out", str(tmp_path / "remaining.csv")]
    argv = ["gallery", "delete", *base, "--subject", subject, *erasure, "--verify", "--json"]
    report = json.loads(run(capsys, argv))
    assert report["faces_removed"] == 1 and report["people_matched"] >= 1
    assert report["pairs_removed"] >= sum(person in row["image1"] + row["image2"] for row in rows)
    assert report["retrained"] is True and report["exact_unlearning"] is True
    assert report["held"] is True  # the saved calibration equals a fresh fit without them
    assert report["membership"]["held"] in (None, report["membership"]["p_after"] > 0.05)
    assert read_config(model)["training_pairs_sha256"] != before
    assert len(read_rows(tmp_path / "remaining.csv")) == len(rows) - report["pairs_removed"]
    # The gallery is still the model's (retraining keeps what templates depend on).
    assert run(capsys, ["gallery", "list", "--store", store]) == "no subjects"
    assert "needs --data and the pairs" in run_error(
        capsys, ["gallery", "delete", *base, "--subject", subject, "--verify"]
    )


@pytest.mark.slow
def test_bench_gallery_measures_rank1_enrolment_and_search(
    capsys, sface_model, lfw_root, cache_dir
):
    argv = ["bench", "--data", str(lfw_root), "--gallery", "--model", str(sface_model)]
    argv += ["--cache", str(cache_dir), "--images", "12", "--gallery-size", "3000"]
    argv += ["--gallery-encrypted-size", "300", "--gallery-probes", "60", "--json"]
    measured = json.loads(run(capsys, argv))["gallery"]
    rank1, search = measured["rank1"], measured["search"]
    assert set(rank1) == {"plain", "ckks"}  # the cosine system, its templates both ways
    for protection, r in rank1.items():
        assert r["protection"] == (None if protection == "plain" else "ckks")
        assert r["probes"] == 60 and r["seed"] == 0 and r["subjects"] > 1000
        assert r["rank1"] >= 0.95 and r["identified"] <= r["rank1"]
    assert abs(measured["ckks_minus_plain"]) <= 0.02  # CKKS noise is 1e-5 per cosine
    assert [e["protection"] for e in measured["enrolment"]] == [None, "ckks"]
    assert all(e["faces"] == 12 and e["faces_per_s"] > 0 for e in measured["enrolment"])
    assert [(s["kind"], s["templates"]) for s in search] == [
        ("exact", 3000),
        ("ann", 3000),
        ("encrypted", 300),
    ]
    assert all(0 < s["p50_ms"] <= s["p95_ms"] and s["seed"] == 0 for s in search)
    assert "--gallery needs --model" in run_error(
        capsys, ["bench", "--data", str(lfw_root), "--gallery"]
    )


@pytest.mark.slow
def test_delete_from_the_recommended_deployment_uses_its_public_pairs(
    capsys, tmp_path, lfw_root, cache_dir, sface_dlib_embedder
):
    """`train --deploy configs/deploy.toml` (public calibration, CKKS templates): erasure
    takes the public pairs alone, finds the person there, refits without them, writes the
    remaining pairs, and the next erasure is accepted with that file. Refusals come before
    any work: the subject stays enrolled and the model unchanged."""
    work = tmp_path / "work"
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(work / "pairs"), "--seed", "0"]) == 0
    )
    members, public = work / "pairs" / "target_train.csv", work / "pairs" / "attacker.csv"
    model, key = work / "model", work / "keys" / "facebone.key"
    deploy = Path(__file__).resolve().parents[1] / "configs" / "deploy.toml"
    argv = ["train", "--deploy", str(deploy), "--data", str(lfw_root), "--cache", str(cache_dir)]
    argv += ["--pairs", str(members), "--public-pairs", str(public), "--key-file", str(key)]
    assert main([*argv, "--out", str(model)]) == 0
    capsys.readouterr()
    base = ["--store", str(work / "g.sqlite"), "--model", str(model), "--key-file", str(key)]
    run(capsys, ["gallery", "create", *base])
    counts = Counter(
        path.split("/")[0] for row in read_rows(public) for path in (row["image1"], row["image2"])
    )
    first, second = [name for name, _ in counts.most_common(2)]
    subject = run(capsys, ["gallery", "enroll", *base, *photos(lfw_root, first)])
    data = ["--data", str(lfw_root), "--cache", str(cache_dir)]
    delete = ["gallery", "delete", *base, "--subject", subject, *data]
    out1 = work / "public-1.csv"
    config = (model / "config.json").read_bytes()
    refusals = {
        "members' pairs trained nothing": ["--pairs", str(members), "--public-pairs", str(public)],
        "needs --public-pairs-out": ["--public-pairs", str(public)],
        "already exists": ["--public-pairs", str(public), "--public-pairs-out", str(members)],
        "inside the data folder": [
            "--public-pairs",
            str(public),
            "--public-pairs-out",
            str(lfw_root / "x.csv"),
        ],
        "SHA-256 differs": [  # one pair short: plainly not the model's
            "--public-pairs",
            str(short(public, work / "short.csv")),
            "--public-pairs-out",
            str(out1),
        ],
    }
    for message, flags in refusals.items():
        assert message in run_error(capsys, [*delete, *flags]), message
    assert (model / "config.json").read_bytes() == config and not out1.exists()
    assert subject in run(capsys, ["gallery", "list", "--store", str(work / "g.sqlite")])

    flags = ["--public-pairs", str(public), "--public-pairs-out", str(out1), "--verify"]
    report = json.loads(run(capsys, [*delete, *flags, "--json"]))
    assert report["people_matched"] >= 1 and report["retrained"] is True
    assert report["public_pairs_removed"] >= counts[first] // 2 > 0
    assert report["exact_unlearning"] is True and report["public_pairs_out"] == str(out1)
    remaining = read_rows(out1)
    assert all(first not in row["image1"] + row["image2"] for row in remaining)
    assert len(remaining) == len(read_rows(public)) - report["public_pairs_removed"]

    # The next erasure is checked against the remaining pairs, and accepted.
    other = run(capsys, ["gallery", "enroll", *base, *photos(lfw_root, second)])
    out2 = work / "public-2.csv"
    argv = ["gallery", "delete", *base, "--subject", other, *data, "--public-pairs", str(out1)]
    report = json.loads(run(capsys, [*argv, "--public-pairs-out", str(out2), "--json"]))
    assert report["retrained"] is True and report["public_pairs_removed"] > 0
    assert len(read_rows(out2)) == len(remaining) - report["public_pairs_removed"]


def read_rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def photos(lfw_root, person: str) -> list[str]:
    return [str(p) for p in sorted((lfw_root / person).iterdir())[:2]]


def short(path, out):
    lines = path.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]))
    return out


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, lfw_root):
    """A `key,photo` manifest of 24 LFW people with two photos or more: the first photo of
    each, and a second one for every third person; the photos not enrolled probe them."""
    from facebone.data.lfw import scan_lfw

    by_person: dict[str, list[str]] = {}
    for image in scan_lfw(lfw_root):
        by_person.setdefault(image.identity, []).append(image.path)
    several = [sorted(p) for _, p in sorted(by_person.items()) if len(p) >= 3][:24]
    rows, probes = [], {}
    for n, photos in enumerate(several):
        key = f"person {n}"  # the caller's own key: a name, with a space
        enrolled = photos[: 1 + (n % 3 == 0)]
        rows += [(key, str(lfw_root / photo)) for photo in enrolled]
        probes[key] = photos[2]
    path = tmp_path_factory.mktemp("manifest") / "people.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("key", "photo"), *rows])
    return path, Counter(key for key, _ in rows), probes


def _check_batch(capsys, base, store, out, manifest, lfw_root):
    """Every key enrolled once, as one subject with its photos, and identified as itself."""
    _, counts, probes = manifest
    ids = json.loads(out.read_text())
    assert set(ids) == set(counts) and len(set(ids.values())) == len(ids)
    listed = json.loads(run(capsys, ["gallery", "list", "--store", store, "--json"]))
    faces = {row["subject"]: row["faces"] for row in listed["subjects"]}
    assert faces == {ids[key]: count for key, count in counts.items()}  # none twice
    for key in list(probes)[:4]:
        found = run(capsys, ["gallery", "identify", *base, str(lfw_root / probes[key])])
        assert found == ids[key]


def test_batch_enrolment_killed_with_sigkill_resumes_without_duplicates(
    capsys, tmp_path, sface_model, lfw_root, manifest
):
    store, out = str(tmp_path / "people.sqlite"), tmp_path / "ids.json"
    base = ["--store", store, "--model", str(sface_model)]
    run(capsys, ["gallery", "create", *base])
    batch = ["gallery", "enroll", *base, "--batch", str(manifest[0]), "--out", str(out)]
    # One person per transaction: the kill after the second leaves 22 to go, more than a
    # busy machine lets the child run ahead of this reader.
    argv = [sys.executable, "-m", "facebone", *batch, "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    progress = []
    try:
        for line in child.stderr:
            if "enrolled" in line:
                progress.append(line)
            if len(progress) == 2:  # two transactions committed
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
    assert len(progress) == 2 and "enrolled 2/24 people" in progress[1], progress
    recorded = json.loads(out.read_text())
    assert 2 <= len(recorded) < 24  # the kill came before the end
    assert "already exists" in run_error(capsys, batch)  # never overwritten by mistake
    run(capsys, [*batch, "--resume"])
    assert json.loads(out.read_text()).items() >= recorded.items()  # the ids given stay
    _check_batch(capsys, base, store, out, manifest, lfw_root)


class Killed(BaseException):
    """Stands for a SIGKILL: no handler of the CLI catches it."""


@pytest.mark.parametrize("killed", ["before the commit", "after the commit"])
def test_batch_enrolment_interrupted_around_a_commit_resumes_without_duplicates(
    killed, capsys, tmp_path, sface_model, lfw_root, manifest, monkeypatch
):
    """A kill between the pending record and the commit (rolled back: enrolled again), or
    between the commit and the output's rewrite (committed: not enrolled again)."""
    from facebone.gallery.batch import Journal

    store, out = str(tmp_path / "people.sqlite"), tmp_path / "ids.json"
    base = ["--store", store, "--model", str(sface_model)]
    run(capsys, ["gallery", "create", *base])
    batch = ["gallery", "enroll", *base, "--batch", str(manifest[0]), "--out", str(out)]
    batch += ["--batch-size", "10"]
    # Killed right after the second transaction's pending record, or right after its commit.
    step = Journal.begin if killed == "before the commit" else Journal.commit
    calls = []

    def dies_the_second_time(self, entries):
        calls.append(entries)
        if len(calls) == 2 and killed == "after the commit":
            raise Killed  # nothing after it runs
        step(self, entries)
        if len(calls) == 2:
            raise Killed

    monkeypatch.setattr(Journal, step.__name__, dies_the_second_time)
    with pytest.raises(Killed):
        main(batch)
    monkeypatch.undo()
    assert len(json.loads(out.read_text())) == 10  # the second transaction not recorded yet
    assert "give --resume" in run_error(capsys, batch)
    run(capsys, [*batch, "--resume"])
    assert not Path(f"{out}.pending").exists()
    _check_batch(capsys, base, store, out, manifest, lfw_root)
    (tmp_path / "bad.csv").write_text("name,file\nx,y\n")
    bad = ["gallery", "enroll", *base, "--batch", str(tmp_path / "bad.csv")]
    assert "header key,photo" in run_error(capsys, bad)
