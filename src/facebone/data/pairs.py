"""Pair lists (`image1,image2,label` CSV, paths relative to the data root) and the
identity-disjoint protocol that the privacy experiments need.
"""

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facebone.atomic import write_text_atomic
from facebone.data.lfw import FaceImage
from facebone.data.text_files import read_text
from facebone.errors import FaceBoneError

log = logging.getLogger(__name__)

COLUMNS = ("image1", "image2", "label")
# Roles, in the order identities are dealt to them. Members of the target come from
# target_train, non-members (and the utility test) from target_test; the attacker trains
# shadow models and attack models on its own identities only.
ROLES = ("target_train", "target_test", "attacker")
DEFAULT_FRACTIONS = (0.4, 0.3, 0.3)


class Pair(NamedTuple):
    """Two images (paths relative to the data root) and 1 if they show the same person."""

    image1: str
    image2: str
    label: int


def pair_labels(pairs: Sequence[Pair]) -> np.ndarray:
    """The 0/1 labels of `pairs`, as int64."""
    return np.array([pair.label for pair in pairs], dtype=np.int64)


@dataclass
class PairList:
    """Pairs read from a CSV, and the rows left out with the reason for each."""

    pairs: list[Pair]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    # Line numbers of rows that repeat an earlier row's two images (in either order).
    repeated: list[int] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return pair_labels(self.pairs)

    @property
    def images(self) -> list[str]:
        """Distinct images, in first-seen order."""
        return list(dict.fromkeys(p for pair in self.pairs for p in (pair.image1, pair.image2)))


def read_pairs(csv_path: str | Path, data_root: str | Path, distinct: bool = False) -> PairList:
    """Read a pairs CSV, keeping only pairs whose two images exist under `data_root`.

    Skipped rows are counted and logged with their reason; a file with the wrong columns, a
    bad label or a path that leads outside `data_root` (`..`, absolute, a symlink out) is an
    error with its line number. Every path is kept in its canonical form (`canonical_path`),
    so `./A/x.jpg`, `A//x.jpg`, `B/../A/x.jpg` and a link to `A/x.jpg` are one image to the
    repeat check and one person to the identity checks. A photo paired with itself (under
    any of those names) is an error. Repeated pairs are kept with a warning, or refused when
    `distinct` (a training set, where a repeat would count twice in membership).
    """
    csv_path, data_root = Path(csv_path), Path(data_root)
    real_root = data_root.resolve()
    reader = csv.reader(io.StringIO(read_text(csv_path, "pairs file")))
    header = next(reader, None)
    if header is None:
        raise FaceBoneError(f"pairs file {csv_path} is empty")
    if tuple(column.strip() for column in header) != COLUMNS:
        raise FaceBoneError(
            f"pairs file {csv_path} must have the columns {','.join(COLUMNS)}, "
            f"found {','.join(header)}"
        )
    pairs: list[Pair] = []
    skipped: list[tuple[int, str]] = []
    first_lines: dict[tuple[str, str], int] = {}
    repeated: list[int] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != 3 or row[2].strip() not in {"0", "1"}:
            raise FaceBoneError(f"{csv_path}, line {line}: expected image1,image2,label(0/1)")
        given = row[0].strip(), row[1].strip()
        image1, image2 = (canonical_path(real_root, p) for p in given)
        outside = [p for p, canonical in zip(given, (image1, image2), strict=True) if not canonical]
        if outside:
            raise FaceBoneError(
                f"{csv_path}, line {line}: {outside[0]} leads outside the data folder {data_root}"
            )
        if image1 == image2:
            raise FaceBoneError(
                f"{csv_path}, line {line}: pairs {given[0]} with itself; a pair compares two photos"
            )
        key = (min(image1, image2), max(image1, image2))
        if key in first_lines:
            if distinct:
                raise FaceBoneError(
                    f"{csv_path}, line {line}: repeats the pair of line {first_lines[key]}; "
                    "a training set must not repeat pairs"
                )
            repeated.append(line)
        first_lines.setdefault(key, line)
        missing = [p for p in (image1, image2) if not (data_root / p).is_file()]
        if missing:
            skipped.append((line, f"missing image {missing[0]}"))
            continue
        pairs.append(Pair(image1, image2, int(row[2])))
    if not pairs and not skipped:
        raise FaceBoneError(f"pairs file {csv_path} has no pairs")
    if skipped:
        log.warning(
            "%s: kept %d of %d pairs; skipped %d whose images are not in %s (first: line %d, %s)",
            csv_path,
            len(pairs),
            len(pairs) + len(skipped),
            len(skipped),
            data_root,
            *skipped[0],
        )
    if not pairs:
        raise FaceBoneError(
            f"{csv_path}: none of its {len(skipped)} pairs has both images in {data_root}"
        )
    if repeated:
        log.warning(
            "%s: %d rows repeat an earlier pair (first: line %d); they are used as given",
            csv_path,
            len(repeated),
            repeated[0],
        )
    return PairList(pairs, skipped, repeated)


def canonical_path(real_root: Path, relative: str) -> str | None:
    """`relative` as the path, relative to the resolved data root `real_root`, of the file it
    names (`.`, `..`, repeated slashes and links resolved); None if it leads outside."""
    if Path(relative).is_absolute():
        return None
    resolved = (real_root / relative).resolve()
    if not resolved.is_relative_to(real_root):
        return None
    return resolved.relative_to(real_root).as_posix()


def pairs_csv_text(pairs: list[Pair]) -> str:
    """The CSV text `write_pairs` writes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((pair.image1, pair.image2, pair.label) for pair in pairs)
    return buffer.getvalue()


def write_pairs(path: str | Path, pairs: list[Pair]) -> None:
    write_text_atomic(path, pairs_csv_text(pairs))


def split_identities(
    images: list[FaceImage], fractions: tuple[float, ...], seed: int
) -> list[set[str]]:
    """Deal identities to roles so each gets its fraction of the possible positive pairs.

    Identities with several images are dealt largest first to the role furthest below its
    share (a plain random split would hand one role a 62-image person); single-image
    identities, which only make negatives, are dealt at random in the same proportions.
    """
    rng = np.random.default_rng(seed)
    by_identity = _group(images)
    names = sorted(by_identity)
    rng.shuffle(names)
    fractions_array = np.asarray(fractions, dtype=float)
    roles: list[set[str]] = [set() for _ in fractions]
    weight = np.zeros(len(fractions))
    multi = sorted(
        (n for n in names if len(by_identity[n]) > 1), key=lambda n: -len(by_identity[n])
    )
    for name in multi:
        role = int(np.argmin(weight / fractions_array))
        roles[role].add(name)
        weight[role] += len(by_identity[name])
    singles = [n for n in names if len(by_identity[n]) == 1]
    bounds = np.round(np.cumsum(fractions_array) * len(singles)).astype(int)
    for role, chunk in enumerate(np.split(np.array(singles, dtype=object), bounds[:-1])):
        roles[role].update(chunk.tolist())
    return roles


def make_pairs(
    images: list[FaceImage], identities: set[str], seed: int, max_positives_per_identity: int
) -> list[Pair]:
    """Balanced pairs within `identities`: every positive drawn, as many random negatives."""
    rng = np.random.default_rng(seed)
    by_identity = {k: v for k, v in _group(images).items() if k in identities}
    positives: list[Pair] = []
    for name in sorted(by_identity):
        candidates = list(combinations(by_identity[name], 2))
        if len(candidates) > max_positives_per_identity:
            chosen = rng.choice(len(candidates), max_positives_per_identity, replace=False)
            candidates = [candidates[i] for i in sorted(chosen)]
        positives += [Pair(a, b, 1) for a, b in candidates]
    pool = [(image, name) for name in sorted(by_identity) for image in by_identity[name]]
    if len({name for _, name in pool}) < 2:
        raise FaceBoneError("too few identities to make negative pairs")
    negatives: set[tuple[str, str]] = set()
    while len(negatives) < len(positives):
        i, j = rng.choice(len(pool), 2, replace=False)
        (a, name_a), (b, name_b) = pool[i], pool[j]
        if name_a != name_b:
            negatives.add((min(a, b), max(a, b)))
    pairs = positives + [Pair(a, b, 0) for a, b in sorted(negatives)]
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order]


def make_protocol(
    images: list[FaceImage],
    seed: int,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    max_positives_per_identity: int = 20,
) -> dict[str, list[Pair]]:
    """Identity-disjoint, balanced pair lists for each role in `ROLES`."""
    if len(fractions) != len(ROLES) or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise FaceBoneError(
            f"fractions {','.join(str(f) for f in fractions)}: give {len(ROLES)} positive "
            f"fractions adding up to 1, one per role {','.join(ROLES)}"
        )
    identity_sets = split_identities(images, fractions, seed)
    return {
        role: make_pairs(images, identities, seed + index, max_positives_per_identity)
        for index, (role, identities) in enumerate(zip(ROLES, identity_sets, strict=True))
    }


def _group(images: list[FaceImage]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for image in images:
        groups[image.identity].append(image.path)
    return groups
