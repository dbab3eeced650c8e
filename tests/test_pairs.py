"""Pair protocols: identity-disjoint roles, balanced, reproducible; pairs CSVs read strictly."""

import pytest

import test_hardening
from facebone.cli import main
from facebone.data.lfw import scan_lfw
from facebone.data.pairs import ROLES, make_protocol, read_pairs
from facebone.errors import FaceBoneError

data = test_hardening.data  # issue 8's fixture: real LFW photos of four people in tmp_path


def _identities(pairs) -> set[str]:
    return {path.split("/")[0] for pair in pairs for path in (pair.image1, pair.image2)}


def test_roles_are_disjoint_by_identity_and_balanced(protocol):
    assert set(protocol) == set(ROLES)
    identity_sets = [_identities(protocol[role]) for role in ROLES]
    for i, first in enumerate(identity_sets):
        for second in identity_sets[i + 1 :]:
            assert not first & second
    for role, pairs in protocol.items():
        positives = sum(pair.label for pair in pairs)
        assert positives == len(pairs) - positives, role
        assert positives > 200, role
        assert len({(p.image1, p.image2) for p in pairs}) == len(pairs)
        for pair in pairs:
            same = pair.image1.split("/")[0] == pair.image2.split("/")[0]
            assert same == bool(pair.label)


def test_same_seed_same_files_other_seed_other_files(lfw_root, tmp_path, capsys):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert (
            main(
                [
                    "pairs",
                    "--data",
                    str(lfw_root),
                    "--out",
                    str(tmp_path / name),
                    "--seed",
                    str(seed),
                ]
            )
            == 0
        )
    capsys.readouterr()
    for role in ROLES:
        first = (tmp_path / "a" / f"{role}.csv").read_text()
        assert first.startswith("image1,image2,label\n")
        assert first == (tmp_path / "b" / f"{role}.csv").read_text()
        assert first != (tmp_path / "c" / f"{role}.csv").read_text()


def test_without_a_seed_the_split_cannot_be_rebuilt_from_public_information(
    lfw_root, tmp_path, capsys
):
    """No --seed: a seed from OS entropy, kept in a file only its owner can read and never
    printed; no small seed rebuilds the split, and the kept seed does."""
    import json
    import stat

    for name in ("a", "b"):
        assert (
            main(["pairs", "--data", str(lfw_root), "--out", str(tmp_path / name), "--json"]) == 0
        )
        shown = json.loads(capsys.readouterr().out)
        kept = tmp_path / name / "seed.txt"
        assert shown["seed"] == str(kept)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    members = {role: (tmp_path / "a" / f"{role}.csv").read_text() for role in ROLES}
    assert members["target_train"] != (tmp_path / "b" / "target_train.csv").read_text()
    seed = int((tmp_path / "a" / "seed.txt").read_text())
    images = scan_lfw(lfw_root)
    tried = {s: make_protocol(images, seed=s)["target_train"] for s in range(20)}
    read = read_pairs(tmp_path / "a" / "target_train.csv", lfw_root).pairs
    assert all(pairs != read for pairs in tried.values())
    assert make_protocol(images, seed=seed)["target_train"] == read


def test_cap_limits_pairs_of_one_person(lfw_root):
    protocol = make_protocol(scan_lfw(lfw_root), seed=0, max_positives_per_identity=5)
    positives = [p for pairs in protocol.values() for p in pairs if p.label]
    bush = [p for p in positives if p.image1.startswith("George_W_Bush/")]
    assert len(bush) == 5


def test_seed_pairs_report_skipped_rows(lfw_root, shared_data, caplog):
    pair_list = read_pairs(shared_data / "seed_pairs" / "train.csv", lfw_root)
    assert len(pair_list.pairs) == 202
    assert len(pair_list.skipped) == 5264 - 202
    assert "kept 202 of 5264 pairs" in caplog.text


def test_check_command_reports_kept_and_skipped(lfw_root, shared_data, capsys):
    assert (
        main(
            [
                "pairs",
                "--data",
                str(lfw_root),
                "--check",
                str(shared_data / "seed_pairs" / "test.csv"),
            ]
        )
        == 0
    )
    assert "kept 63 of 1316 pairs; skipped 1253" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\nx,y\n", "must have the columns image1,image2,label"),
        ("", "is empty"),
        ("image1,image2,label\n", "has no pairs"),
        ("image1,image2,label\nA/a.jpg,B/b.jpg,yes\n", "line 2"),
        ("image1,image2,label\nA/a.jpg,B/b.jpg,1\n", "none of its 1 pairs"),
    ],
)
def test_bad_pairs_files(tmp_path, lfw_root, content, message):
    path = tmp_path / "pairs.csv"
    path.write_text(content)
    with pytest.raises(FaceBoneError, match=message):
        read_pairs(path, lfw_root)


def test_missing_pairs_file(tmp_path, lfw_root):
    with pytest.raises(FaceBoneError, match="does not exist"):
        read_pairs(tmp_path / "nope.csv", lfw_root)


ALIASES = {
    "dot": "./{person}/{file}",
    "double-slash": "{person}//{file}",
    "dotdot": "{other}/../{person}/{file}",
    "symlink": "{other}/alias.jpg",
}


def _aliased(data, how: str) -> tuple[str, str, str]:
    """A canonical image path of `data`, the same image named as `how` says, and its
    person."""
    person, other = "Colin_Powell", "Tony_Blair"
    file = sorted(p.name for p in (data / person).iterdir())[0]
    (data / other / "alias.jpg").symlink_to(data / person / file)
    return f"{person}/{file}", ALIASES[how].format(person=person, other=other, file=file), person


@pytest.mark.parametrize("how", ALIASES)
def test_an_image_named_another_way_is_the_same_image(how, data, tmp_path):
    canonical, alias, _ = _aliased(data, how)
    partner = f"Colin_Powell/{sorted(p.name for p in (data / 'Colin_Powell').iterdir())[1]}"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"image1,image2,label\n{canonical},{partner},1\n{partner},{alias},1\n")
    assert read_pairs(pairs, data).repeated == [3]
    with pytest.raises(FaceBoneError, match="line 3: repeats the pair of line 2"):
        read_pairs(pairs, data, distinct=True)
    assert {p.image2 for p in read_pairs(pairs, data).pairs} == {partner, canonical}


@pytest.mark.parametrize("how", ALIASES)
def test_a_person_named_another_way_still_overlaps(how, data, tmp_path):
    """The split files' identity-overlap check sees through the alias."""
    from facebone.studies.config import load_config

    canonical, alias, person = _aliased(data, how)
    same = sorted(f"{person}/{p.name}" for p in (data / person).iterdir() if p.suffix == ".jpg")
    tony = sorted(f"Tony_Blair/{p.name}" for p in (data / "Tony_Blair").iterdir())[0]
    rows = {
        "target_train": f"{canonical},{same[1]},1",
        "target_test": "Gerhard_Schroeder/{},George_W_Bush/{},0".format(
            sorted(p.name for p in (data / "Gerhard_Schroeder").iterdir())[0],
            sorted(p.name for p in (data / "George_W_Bush").iterdir())[0],
        ),
        # The alias is the only photo of the person outside target_train.
        "attacker": f"{alias},{tony},0",
    }
    for role, row in rows.items():
        (tmp_path / f"{role}.csv").write_text(f"image1,image2,label\n{row}\n")
    config = tmp_path / "study.toml"
    config.write_text(
        f'data = "{data}"\noutput = "out"\n[splits]\n'
        "files = { target_train = 'target_train.csv', target_test = 'target_test.csv', "
        "attacker = 'attacker.csv' }\n"
        '[systems]\ndefenses = ["cosine"]\n[[attacks]]\nname = "rule-based"\n'
    )
    with pytest.raises(FaceBoneError, match=f"shares person '{person}'.*the splits overlap"):
        load_config(config)
