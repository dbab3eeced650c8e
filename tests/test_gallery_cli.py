"""`facebone gallery ...` on real LFW photos with the demo's SFace system: enrol, identify,
verify, list, delete, and the one-line errors."""

import json
import re

import pytest

from facebone.cli import main
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
    assert deleted == {"subject": blair, "faces_deleted": 1}
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
