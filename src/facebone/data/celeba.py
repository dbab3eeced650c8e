"""CelebA in its standard layout: identities, attributes, identity-disjoint splits and pairs.

Attribute-inference and membership attacks need three identity-disjoint populations (the
model's training people, the attacker's training people, the attacker's test people);
sharing one identity across them would leak the answer. Splits can also be balanced on an
attribute so that a trivial majority-class guess scores exactly 50%.

Layout read (as distributed by the CelebA authors)::

    ROOT/img_align_celeba/000001.jpg ...
    ROOT/identity_CelebA.txt     000001.jpg 2880
    ROOT/list_attr_celeba.txt    count, then the attribute names, then `000001.jpg -1 1 ...`
"""

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.data.pairs import Pair
from facebone.data.text_files import read_text
from facebone.errors import FaceBoneError

logger = logging.getLogger(__name__)

IMAGE_FOLDER = "img_align_celeba"
IDENTITY_FILE = "identity_CelebA.txt"
ATTRIBUTE_FILE = "list_attr_celeba.txt"


@dataclass(frozen=True)
class CelebA:
    """CelebA's annotations; image paths are relative to `root`, rows align across fields."""

    root: Path
    images: list[str]  # "img_align_celeba/000001.jpg"
    identities: np.ndarray  # (n_images,) int64
    attributes: np.ndarray  # (n_images, n_attributes) int8, 1 = has the attribute
    attribute_names: list[str]

    def attribute(self, name: str) -> np.ndarray:
        """The {0,1} column for attribute `name`."""
        return self.attributes[:, self.attribute_index(name)]

    def attribute_index(self, name: str) -> int:
        try:
            return self.attribute_names.index(name)
        except ValueError:
            valid = ", ".join(self.attribute_names)
            raise FaceBoneError(f"unknown CelebA attribute {name!r}; valid: {valid}") from None


def load_celeba(root: str | os.PathLike) -> CelebA:
    """Read CelebA's identity and attribute files and check they match the image folder."""
    root = Path(root)
    image_dir = root / IMAGE_FOLDER
    if not image_dir.is_dir():
        raise FaceBoneError(f"CelebA image folder {image_dir} not found")
    names, identities = _read_identities(root / IDENTITY_FILE)
    attribute_names, attribute_rows = _read_attributes(root / ATTRIBUTE_FILE)

    missing_attrs = [name for name in names if name not in attribute_rows]
    if missing_attrs:
        raise FaceBoneError(
            f"{root / ATTRIBUTE_FILE} has no attributes for {len(missing_attrs)} image(s) "
            f"listed in {IDENTITY_FILE}, e.g. {', '.join(missing_attrs[:3])}"
        )
    present = {entry.name for entry in os.scandir(image_dir)}
    missing_files = [name for name in names if name not in present]
    if missing_files:
        raise FaceBoneError(
            f"{len(missing_files)} image(s) listed in {IDENTITY_FILE} are missing from "
            f"{image_dir}, e.g. {', '.join(missing_files[:3])}"
        )
    attributes = np.array([attribute_rows[name] for name in names], dtype=np.int8)
    attributes = attributes.reshape(len(names), len(attribute_names))
    return CelebA(
        root=root,
        images=[f"{IMAGE_FOLDER}/{name}" for name in names],
        identities=np.array(identities, dtype=np.int64),
        attributes=attributes,
        attribute_names=attribute_names,
    )


def split_identities(
    celeba: CelebA,
    fractions: Sequence[float] = (0.5, 0.25, 0.25),
    seed: int = 0,
    balance_attribute: str | None = None,
) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    """Split identities into disjoint (model_train, attack_train, attack_test) sets.

    `fractions` may sum to less than 1 to use a subset. With `balance_attribute`, each
    identity is labelled by the majority value over its images (ties count as 0) and every
    split gets as many identities with the attribute as without; identities beyond the
    smaller group are left out.
    """
    fractions = _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    people = np.unique(celeba.identities)
    if balance_attribute is None:
        groups = [rng.permutation(people)]
    else:
        labels = identity_labels(celeba, balance_attribute)
        positive = np.array([p for p in people if labels[p] == 1], dtype=np.int64)
        negative = np.array([p for p in people if labels[p] == 0], dtype=np.int64)
        if len(positive) == 0 or len(negative) == 0:
            raise FaceBoneError(
                f"cannot balance on {balance_attribute!r}: {len(positive)} identities have "
                f"it and {len(negative)} lack it"
            )
        size = min(len(positive), len(negative))
        groups = [rng.permutation(positive)[:size], rng.permutation(negative)[:size]]
        logger.info(
            "balancing on %s: using %d of %d identities",
            balance_attribute,
            2 * size,
            len(people),
        )

    splits: list[set[int]] = [set(), set(), set()]
    for group in groups:
        bounds = np.rint(np.cumsum([0.0, *fractions]) * len(group)).astype(int)
        for i in range(3):
            chunk = group[bounds[i] : bounds[i + 1]]
            if len(chunk) == 0:
                raise FaceBoneError(
                    f"too few identities ({len(people)}) for split fractions {fractions}: "
                    f"split {i + 1} would be empty"
                )
            splits[i].update(int(p) for p in chunk)
    return frozenset(splits[0]), frozenset(splits[1]), frozenset(splits[2])


def identity_labels(celeba: CelebA, attribute: str) -> dict[int, int]:
    """Each identity's majority value of `attribute` over its images (ties count as 0)."""
    column = celeba.attribute(attribute).astype(np.int64)
    people, inverse = np.unique(celeba.identities, return_inverse=True)
    positives = np.bincount(inverse, weights=column, minlength=len(people))
    counts = np.bincount(inverse, minlength=len(people))
    return {int(p): int(2 * pos > n) for p, pos, n in zip(people, positives, counts, strict=True)}


def make_pairs(
    celeba: CelebA, identities: Iterable[int], n_pairs: int, seed: int = 0
) -> list[Pair]:
    """Draw `n_pairs` distinct (image1, image2, label) pairs from `identities` only.

    Half are same-identity pairs (label 1), half different-identity (label 0; the extra
    one when `n_pairs` is odd), each drawn uniformly without repetition and shuffled.
    Paths are relative to the CelebA root, as in the project's `image1,image2,label` CSVs.
    """
    if n_pairs < 1:
        raise FaceBoneError(f"n_pairs must be at least 1, got {n_pairs}")
    wanted = sorted({int(p) for p in identities})
    known = set(np.unique(celeba.identities).tolist())
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise FaceBoneError(f"{len(unknown)} identities are not in CelebA, e.g. {unknown[:5]}")
    # Pool sorted by (identity, image) so that each identity is one contiguous block.
    rows = np.flatnonzero(np.isin(celeba.identities, wanted))
    rows = rows[np.lexsort((rows, celeba.identities[rows]))]
    ids = celeba.identities[rows]
    block_end = np.searchsorted(ids, ids, side="right")
    index = np.arange(len(rows))
    # Partners of pool item i: same identity in (i, block_end[i]), others in [block_end[i], n).
    same = _sample_partners(index + 1, block_end - index - 1, n_pairs // 2, seed, "same")
    diff = _sample_partners(
        block_end, len(rows) - block_end, n_pairs - n_pairs // 2, seed + 1, "different"
    )
    pairs = [(rows[i], rows[j], 1) for i, j in same] + [(rows[i], rows[j], 0) for i, j in diff]
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [
        Pair(celeba.images[pairs[k][0]], celeba.images[pairs[k][1]], pairs[k][2]) for k in order
    ]


def _sample_partners(
    start: np.ndarray, count: np.ndarray, n: int, seed: int, kind: str
) -> list[tuple[int, int]]:
    """Pick `n` distinct (i, j) uniformly, where j ranges over start[i] .. start[i]+count[i]."""
    if n == 0:
        return []
    offsets = np.cumsum(count)
    capacity = int(offsets[-1]) if len(offsets) else 0
    if capacity < n:
        raise FaceBoneError(
            f"asked for {n} {kind}-identity pairs but the chosen identities allow only {capacity}"
        )
    picks = np.random.default_rng(seed).choice(capacity, size=n, replace=False)
    firsts = np.searchsorted(offsets, picks, side="right")
    before = offsets[firsts] - count[firsts]
    seconds = start[firsts] + (picks - before)
    return list(zip(firsts.tolist(), seconds.tolist(), strict=True))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not f > 0 for f in values) or sum(values) > 1 + 1e-9:
        raise FaceBoneError(
            f"fractions must be three positive numbers summing to at most 1, got {fractions}"
        )
    return values[0], values[1], values[2]


def _read_identities(path: Path) -> tuple[list[str], list[int]]:
    names: list[str] = []
    identities: list[int] = []
    seen: set[str] = set()
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 2 or not _is_int(fields[1]):
            raise FaceBoneError(
                f"{path} line {number}: expected '<image> <identity>', got {line!r}"
            )
        if fields[0] in seen:
            raise FaceBoneError(f"{path} line {number}: image {fields[0]} listed twice")
        seen.add(fields[0])
        names.append(fields[0])
        identities.append(int(fields[1]))
    if not names:
        raise FaceBoneError(f"{path} lists no images")
    return names, identities


def _read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    lines = iter(_lines(path))
    first = next(lines, None)
    second = next(lines, None)
    if first is None or not _is_int(first[1].strip()):
        raise FaceBoneError(f"{path} line 1: expected the number of images")
    if second is None or not second[1].split():
        raise FaceBoneError(f"{path} line 2: expected the attribute names")
    declared = int(first[1])
    names = second[1].split()
    rows: dict[str, list[int]] = {}
    for number, line in lines:
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise FaceBoneError(
                f"{path} line {number}: expected an image and {len(names)} values, "
                f"got {len(fields)} fields"
            )
        if any(value not in ("1", "-1") for value in fields[1:]):
            raise FaceBoneError(f"{path} line {number}: attribute values must be -1 or 1")
        if fields[0] in rows:
            raise FaceBoneError(f"{path} line {number}: image {fields[0]} listed twice")
        rows[fields[0]] = [int(value == "1") for value in fields[1:]]
    if len(rows) != declared:
        raise FaceBoneError(f"{path} line 1 declares {declared} images but lists {len(rows)}")
    return names, rows


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers."""
    text = read_text(path, "CelebA file")
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
