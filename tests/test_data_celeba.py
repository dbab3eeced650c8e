"""CelebA reader, identity splits and pairs, on a tiny CelebA-layout copy of real LFW faces."""

import csv
import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from facebone.data.celeba import (
    ATTRIBUTE_FILE,
    IDENTITY_FILE,
    CelebA,
    identity_labels,
    load_celeba,
    make_pairs,
    split_identities,
)
from facebone.errors import FaceBoneError

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"
N_PEOPLE = 12
PER_PERSON = 3
ATTRIBUTES = ["Male", "Eyeglasses", "Smiling"]

pytestmark = pytest.mark.skipif(not LFW.is_dir(), reason=f"shared LFW data not found at {LFW}")


def _identity(person: int) -> int:
    return 100 + 7 * person  # CelebA ids are arbitrary integers, not 0..n-1


def _attribute_row(person: int, k: int) -> list[int]:
    male = person % 3 != 0  # 8 male people, 4 female: unbalanced on purpose
    if person == 1 and k == 1:
        male = False  # a noisy label; the person's majority is still male
    if person == 0 and k == 1:
        male = True  # and this one's majority is still female
    return [1 if male else -1, -1, 1 if (person + k) % 2 else -1]


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    (root / "img_align_celeba").mkdir()
    people = [p for p in sorted(LFW.iterdir()) if len(list(p.glob("*.jpg"))) >= PER_PERSON]
    id_lines, attr_lines = [], []
    number = 0
    for person, folder in enumerate(people[:N_PEOPLE]):
        for k, image in enumerate(sorted(folder.glob("*.jpg"))[:PER_PERSON]):
            number += 1
            name = f"{number:06d}.jpg"
            shutil.copyfile(image, root / "img_align_celeba" / name)
            id_lines.append(f"{name} {_identity(person)}")
            # CelebA pads positive values with two spaces: "-1  1 -1".
            values = " ".join(f"{v:2d}" for v in _attribute_row(person, k))
            attr_lines.append(f"{name} {values}")
    (root / IDENTITY_FILE).write_text("\n".join(id_lines) + "\n")
    header = f"{number}\n{' '.join(ATTRIBUTES)} \n"
    (root / ATTRIBUTE_FILE).write_text(header + "\n".join(attr_lines) + "\n")
    return root


@pytest.fixture(scope="module")
def celeba(celeba_root: Path) -> CelebA:
    return load_celeba(celeba_root)


def _broken_copy(root: Path, tmp_path: Path, file: str, line: int, text: str) -> Path:
    copy = tmp_path / "broken"
    shutil.copytree(root, copy)
    lines = (copy / file).read_text().splitlines()
    lines[line - 1] = text
    (copy / file).write_text("\n".join(lines) + "\n")
    return copy


def test_load(celeba: CelebA, celeba_root: Path) -> None:
    n = N_PEOPLE * PER_PERSON
    assert len(celeba.images) == n
    assert celeba.images[0] == "img_align_celeba/000001.jpg"
    assert all((celeba_root / image).is_file() for image in celeba.images)
    assert celeba.identities.tolist() == [
        _identity(p) for p in range(N_PEOPLE) for _ in range(PER_PERSON)
    ]
    assert celeba.attribute_names == ATTRIBUTES
    assert celeba.attributes.dtype == np.int8 and celeba.attributes.shape == (n, 3)
    expected = np.array([_attribute_row(p, k) for p in range(N_PEOPLE) for k in range(PER_PERSON)])
    np.testing.assert_array_equal(celeba.attributes, (expected == 1).astype(np.int8))
    assert celeba.attribute("Smiling").tolist() == (expected[:, 2] == 1).astype(int).tolist()


def test_identity_labels_use_the_majority(celeba: CelebA) -> None:
    labels = identity_labels(celeba, "Male")
    assert labels[_identity(0)] == 0 and labels[_identity(1)] == 1
    assert sum(labels.values()) == 8


@pytest.mark.parametrize(
    ("file", "line", "text", "message"),
    [
        (IDENTITY_FILE, 4, "000004.jpg", rf"{IDENTITY_FILE} line 4: expected"),
        (IDENTITY_FILE, 5, "000005.jpg abc", rf"{IDENTITY_FILE} line 5: expected"),
        (IDENTITY_FILE, 2, "000001.jpg 100", rf"{IDENTITY_FILE} line 2: image 000001.jpg listed"),
        (ATTRIBUTE_FILE, 1, "many", rf"{ATTRIBUTE_FILE} line 1: expected the number"),
        (ATTRIBUTE_FILE, 1, "35", rf"{ATTRIBUTE_FILE} line 1 declares 35 images but lists 36"),
        (ATTRIBUTE_FILE, 7, "000005.jpg  1 -1  0", rf"{ATTRIBUTE_FILE} line 7: .* -1 or 1"),
        (ATTRIBUTE_FILE, 3, "000001.jpg  1 -1", rf"{ATTRIBUTE_FILE} line 3: expected an image"),
    ],
)
def test_malformed_files_name_file_and_line(
    celeba_root: Path, tmp_path: Path, file: str, line: int, text: str, message: str
) -> None:
    broken = _broken_copy(celeba_root, tmp_path, file, line, text)
    with pytest.raises(FaceBoneError, match=message):
        load_celeba(broken)


def test_missing_pieces(celeba_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FaceBoneError, match="img_align_celeba"):
        load_celeba(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(celeba_root, copy)
    (copy / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.raises(FaceBoneError, match=r"1 image\(s\) .* missing .* 000007.jpg"):
        load_celeba(copy)
    (copy / ATTRIBUTE_FILE).unlink()
    with pytest.raises(FaceBoneError, match=f"{ATTRIBUTE_FILE} does not exist"):
        load_celeba(copy)


def test_identities_without_attributes(celeba_root: Path, tmp_path: Path) -> None:
    broken = _broken_copy(celeba_root, tmp_path, ATTRIBUTE_FILE, 3, "000999.jpg  1 -1 -1")
    with pytest.raises(FaceBoneError, match=r"no attributes for 1 image\(s\).*000001.jpg"):
        load_celeba(broken)


def test_split_is_disjoint_covering_and_deterministic(celeba: CelebA) -> None:
    splits = split_identities(celeba, (0.5, 0.25, 0.25), seed=3)
    assert [len(s) for s in splits] == [6, 3, 3]
    a, b, c = splits
    assert not (a & b or a & c or b & c)
    assert a | b | c == {_identity(p) for p in range(N_PEOPLE)}
    assert split_identities(celeba, (0.5, 0.25, 0.25), seed=3) == splits
    assert split_identities(celeba, (0.5, 0.25, 0.25), seed=4) != splits

    partial = split_identities(celeba, (0.25, 0.25, 0.25), seed=0)
    assert [len(s) for s in partial] == [3, 3, 3]


def test_split_balanced_on_attribute(celeba: CelebA) -> None:
    labels = identity_labels(celeba, "Male")
    splits = split_identities(celeba, (0.5, 0.25, 0.25), seed=1, balance_attribute="Male")
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    males = [sum(labels[p] for p in split) for split in splits]
    assert [len(s) for s in splits] == [4, 2, 2]  # 4 women limit it: 4 + 4 of 12 people
    assert males == [2, 1, 1]
    assert {_identity(p) for p in range(N_PEOPLE) if p % 3 == 0} <= set().union(*splits)


def test_split_errors(celeba: CelebA) -> None:
    with pytest.raises(FaceBoneError, match="valid: Male, Eyeglasses, Smiling"):
        split_identities(celeba, balance_attribute="Bald")
    with pytest.raises(FaceBoneError, match="0 identities have it"):
        split_identities(celeba, balance_attribute="Eyeglasses")
    with pytest.raises(FaceBoneError, match="split 2 would be empty"):
        split_identities(celeba, (0.9, 0.02, 0.08))
    for bad in [(0.5, 0.5), (0.6, 0.3, 0.3), (0.5, 0.0, 0.5)]:
        with pytest.raises(FaceBoneError, match="fractions"):
            split_identities(celeba, bad)


def test_pairs_balanced_within_identities(celeba: CelebA, celeba_root: Path) -> None:
    identities, _, _ = split_identities(celeba, seed=0)
    identity_of = dict(zip(celeba.images, celeba.identities.tolist(), strict=True))
    pairs = make_pairs(celeba, identities, n_pairs=20, seed=5)

    assert len(pairs) == 20
    assert sum(label for _, _, label in pairs) == 10
    for image1, image2, label in pairs:
        assert image1 != image2
        assert identity_of[image1] in identities and identity_of[image2] in identities
        assert label == int(identity_of[image1] == identity_of[image2])
        assert (celeba_root / image1).is_file()
    assert len({frozenset(p[:2]) for p in pairs}) == 20
    assert {label for *_, label in pairs[:10]} == {0, 1}  # shuffled, not grouped by label

    assert make_pairs(celeba, identities, n_pairs=20, seed=5) == pairs
    assert make_pairs(celeba, identities, n_pairs=20, seed=6) != pairs

    # Same format as the project's pair CSVs.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image1", "image2", "label"])
    writer.writerows(pairs)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert rows[0] == {"image1": pairs[0][0], "image2": pairs[0][1], "label": str(pairs[0][2])}


def test_pairs_can_exhaust_every_same_identity_pair(celeba: CelebA) -> None:
    identities = {_identity(0), _identity(1), _identity(2)}
    pairs = make_pairs(celeba, identities, n_pairs=19, seed=0)  # 9 same + 10 different
    same = {frozenset(p[:2]) for p in pairs if p[2] == 1}
    rows = np.flatnonzero(np.isin(celeba.identities, list(identities)))
    everything = {
        frozenset((celeba.images[i], celeba.images[j]))
        for i, j in itertools.combinations(rows, 2)
        if celeba.identities[i] == celeba.identities[j]
    }
    assert same == everything
    assert sum(1 for p in pairs if p[2] == 0) == 10


def test_pairs_errors(celeba: CelebA) -> None:
    two = {_identity(0), _identity(1)}
    with pytest.raises(FaceBoneError, match="allow only 6"):
        make_pairs(celeba, two, n_pairs=14)  # 7 same-identity pairs wanted, 6 exist
    with pytest.raises(FaceBoneError, match=r"different-identity pairs .* allow only 0"):
        make_pairs(celeba, {_identity(0)}, n_pairs=2)
    with pytest.raises(FaceBoneError, match="not in CelebA"):
        make_pairs(celeba, {_identity(0), 99999}, n_pairs=2)
    with pytest.raises(FaceBoneError, match="at least 1"):
        make_pairs(celeba, two, n_pairs=0)
