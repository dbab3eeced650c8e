"""Batch enrolment: many people from a manifest, many per transaction, resumable after a kill.

One transaction costs about the same whatever it holds when templates are encrypted (D
encryptions per packed block touched, about 2 s for SFace + dlib), so one person per
transaction cannot enrol more than a face or two a second; `size` people per transaction can.

The manifest is a CSV `key,photo`: `key` is the caller's own name for a person (their rows are
one subject), `photo` a path (relative to the manifest's folder). Keys are never stored in the
gallery; the caller gets {key: subject id} back.

Resuming. The gallery does not know the keys, so the record of what is done lives with the
caller, in the output file (`Journal`), rewritten atomically after every commit. The one
window a kill can hit is between a transaction's commit and that rewrite; it is closed by
writing the transaction's {key: id} to `OUT.pending` just before its commit (inside the
transaction). A resumed run keeps the pending ids the store holds (committed before the kill)
and enrols the others again (rolled back): no person twice, nobody lost.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facebone.atomic import write_text_atomic
from facebone.errors import FaceBoneError
from facebone.gallery.gallery import Gallery

log = logging.getLogger(__name__)

# People per transaction: a CKKS transaction costs ~2 s whatever it holds, and 64 people's
# faces (embedded before it starts) keep the cost of a kill to a minute of work.
BATCH_SIZE = 64


@dataclass(frozen=True)
class Person:
    """One manifest key and its photos (one subject)."""

    key: str
    photos: tuple[Path, ...]


def read_manifest(path: str | Path) -> list[Person]:
    """The people of a `key,photo` CSV, in their first row's order; every photo checked to
    exist before anything is enrolled."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"cannot read the manifest {path} ({error})") from None
    if not rows or [cell.strip() for cell in rows[0]] != ["key", "photo"]:
        raise FaceBoneError(f"{path}: the first line must be the header key,photo")
    photos: dict[str, list[Path]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise FaceBoneError(f"{path}, line {line}: expected a key and a photo path")
        photo = path.parent / row[1].strip()
        if not photo.is_file():
            raise FaceBoneError(f"{path}, line {line}: no such photo {photo}")
        group = photos.setdefault(row[0].strip(), [])
        if photo in group:
            raise FaceBoneError(f"{path}, line {line}: {photo} is listed twice for one key")
        group.append(photo)
    if not photos:
        raise FaceBoneError(f"{path} lists no photos")
    return [Person(key, tuple(group)) for key, group in photos.items()]


class Journal:
    """{key: subject id} of the committed enrolments, kept in the output file `path`, with
    `path.pending` holding the transaction about to commit (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.pending_path = self.path.with_name(self.path.name + ".pending")
        self.done: dict[str, str] = {}

    def resume(self, gallery: Gallery) -> None:
        """Read back what an earlier run recorded; a pending transaction counts as done when
        the gallery holds its subjects."""
        self.done = _read_mapping(self.path) if self.path.exists() else {}
        if self.pending_path.exists():
            pending = _read_mapping(self.pending_path)
            committed = {k: s for k, s in pending.items() if gallery.store.has_subject(s)}
            log.info(
                "the interrupted transaction of %d people: %s",
                len(pending),
                "committed" if committed else "rolled back, enrolled again",
            )
            self.done.update(committed)
            self._save()

    def begin(self, entries: dict[str, str]) -> None:
        write_text_atomic(self.pending_path, json.dumps(entries, indent=1) + "\n")

    def commit(self, entries: dict[str, str]) -> None:
        self.done.update(entries)
        self._save()

    def _save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.done, indent=1, sort_keys=True) + "\n")
        self.pending_path.unlink(missing_ok=True)


def _read_mapping(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"cannot read {path} as a key -> subject JSON ({error})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise FaceBoneError(f"{path} is not a JSON object of key -> subject id")
    return mapping


def enroll_batch(
    gallery: Gallery,
    people: Sequence[Person],
    size: int = BATCH_SIZE,
    convert_color: bool = False,
    journal: Journal | None = None,
    on_commit: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Enrol `people` (those the `journal` holds aside), `size` per transaction; {key:
    subject id} of every person, the journal's included. `on_commit(people, faces)` after
    each transaction, with the totals so far."""
    if size < 1:
        raise FaceBoneError(f"the batch size must be at least 1, not {size}")
    done = dict(journal.done) if journal is not None else {}
    todo = [person for person in people if person.key not in done]
    enrolled = faces = 0
    for start in range(0, len(todo), size):
        chunk = todo[start : start + size]
        enrolments = gallery.enrolments([p.photos for p in chunk], convert_color=convert_color)
        keys = [person.key for person in chunk]

        def record(subjects: list[str], keys: list[str] = keys) -> None:
            if journal is not None:
                journal.begin(dict(zip(keys, subjects, strict=True)))

        entries = dict(zip(keys, gallery.enroll_many(enrolments, record), strict=True))
        if journal is not None:
            journal.commit(entries)
        done.update(entries)
        enrolled += len(chunk)
        faces += sum(len(p.photos) for p in chunk)
        if on_commit is not None:
            on_commit(enrolled, faces)
    return done


def progress_logger(total: int) -> Callable[[int, int], None]:
    """An `on_commit` that logs people done of `total` and the faces/s so far."""
    began = time.perf_counter()

    def report(people: int, faces: int) -> None:
        rate = faces / max(time.perf_counter() - began, 1e-9)
        log.info("enrolled %d/%d people (%d faces, %.1f faces/s)", people, total, faces, rate)

    return report
