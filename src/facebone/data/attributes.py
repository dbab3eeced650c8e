"""Binary attribute labels of dataset images, for attribute inference.

One interface for both datasets: `load_attribute_labels(root, name)` gives each labelled image
(path relative to `root`, and whose face it is) a 0/1 label.

- LFW ships no attributes. `gender` is read from the first name in the folder name
  (`First_Last`) with gender-guesser's name lexicon: names it calls `male` or `female` are
  kept, `mostly_*`, `andy` (androgynous) and `unknown` names are dropped, since a guessed label
  would teach and score the attack on noise. Label 1 is male, as CelebA's `Male` column.
- CelebA's 40 attributes come from `list_attr_celeba.txt` through the CelebA reader, per image
  (a person may smile in one photo and not in the next); `gender` is another name for `Male`.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.data.celeba import ATTRIBUTE_FILE, IMAGE_FOLDER, CelebA, load_celeba
from facebone.data.lfw import FaceImage, scan_lfw
from facebone.errors import FaceBoneError

GENDER = "gender"
CELEBA_GENDER = "Male"
# gender-guesser's answers that count as a label; the others are ambiguous or unknown.
KEPT_GUESSES = {"male": 1, "female": 0}


@dataclass(frozen=True)
class AttributeLabels:
    """Labelled images of one attribute; `images[i]` has label `labels[i]` (1 = `positive`).

    `people_dropped` counts the people left without a label, by reason.
    """

    attribute: str
    positive: str
    negative: str
    images: list[FaceImage]
    labels: np.ndarray  # (n_images,) int64 in {0, 1}
    people_kept: int
    people_dropped: dict[str, int]

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {image.path: i for i, image in enumerate(self.images)}

    def select(self, paths: list[str]) -> tuple[list[FaceImage], np.ndarray, list[str]]:
        """The labelled images among `paths` (repeats once), their labels, and the paths
        left out because they have no label."""
        wanted = list(dict.fromkeys(paths))
        rows = [self._index[p] for p in wanted if p in self._index]
        unlabelled = [p for p in wanted if p not in self._index]
        return [self.images[i] for i in rows], self.labels[rows], unlabelled


def is_celeba(root: str | Path) -> bool:
    """Whether `root` is in CelebA's layout (its attribute file and image folder)."""
    root = Path(root)
    return (root / ATTRIBUTE_FILE).is_file() and (root / IMAGE_FOLDER).is_dir()


def dataset_images(root: str | Path) -> list[FaceImage]:
    """Every image of the dataset in `root`, labelled or not, with its person: the list that
    `facebone pairs` deals to roles, so a split by seed here is the same as there."""
    return _celeba_images(load_celeba(root)) if is_celeba(root) else scan_lfw(root)


def _celeba_images(celeba: CelebA) -> list[FaceImage]:
    return [
        FaceImage(path=path, identity=str(person))
        for path, person in zip(celeba.images, celeba.identities.tolist(), strict=True)
    ]


def load_attribute_labels(root: str | Path, attribute: str) -> AttributeLabels:
    """Labels of `attribute` for the images in `root` (CelebA or LFW layout)."""
    if is_celeba(root):
        return celeba_attribute_labels(root, attribute)
    if attribute != GENDER:
        raise FaceBoneError(
            f"attribute {attribute!r} is not known for LFW-layout data {root}: it has only "
            f"{GENDER!r} (from first names); CelebA data has its 40 attributes"
        )
    return lfw_gender_labels(scan_lfw(root))


def guess_genders(people: list[str]) -> tuple[dict[str, int], Counter]:
    """Person (`First_Last` folder name) -> 1 male / 0 female from the first name, and how
    many people gender-guesser left without a label, by its answer."""
    from gender_guesser.detector import Detector

    detector = Detector()
    labels: dict[str, int] = {}
    dropped: Counter = Counter()
    for person in people:
        guess = detector.get_gender(person.split("_", 1)[0])
        if guess in KEPT_GUESSES:
            labels[person] = KEPT_GUESSES[guess]
        else:
            dropped[guess] += 1
    return labels, dropped


def lfw_gender_labels(images: list[FaceImage]) -> AttributeLabels:
    """Gender of LFW images from their people's first names; ambiguous names dropped."""
    people = sorted({image.identity for image in images})
    by_person, dropped = guess_genders(people)
    kept = [image for image in images if image.identity in by_person]
    return AttributeLabels(
        attribute=GENDER,
        positive="male",
        negative="female",
        images=kept,
        labels=np.array([by_person[image.identity] for image in kept], dtype=np.int64),
        people_kept=len(by_person),
        people_dropped={f"first name {reason}": n for reason, n in sorted(dropped.items())},
    )


def celeba_attribute_labels(root: str | Path, attribute: str) -> AttributeLabels:
    """Per-image labels of one of CelebA's attributes (`gender` = `Male`)."""
    celeba = load_celeba(root)
    name = CELEBA_GENDER if attribute == GENDER else attribute
    column = celeba.attribute(name)
    return AttributeLabels(
        attribute=attribute,
        positive=name,
        negative=f"not {name}",
        images=_celeba_images(celeba),
        labels=column.astype(np.int64),
        people_kept=len(np.unique(celeba.identities)),
        people_dropped={},
    )
