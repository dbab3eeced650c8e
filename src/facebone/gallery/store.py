"""The storage contract of a gallery, whatever holds it: a SQLite file (`sqlite_store.py`) or a
PostgreSQL server with pgvector (`postgres_store.py`).

A store keeps subjects, their faces, and each face's template per backbone: a float32 vector
for plain and BioHash templates, or a slot in CKKS-packed blocks of ciphertexts
(`encrypted.py`). It does no embedding and no matching maths; `gallery.py` does. Every write
happens inside `transaction()`, so an enrolment or a deletion is all or nothing, and a process
killed mid-way loses nothing already committed.

Several processes may share a store (two `serve` on one PostgreSQL database, a CLI enrolment
beside a running `serve`). Write transactions never interleave: the second waits for the
first's commit (an encrypted enrolment reads a block, adds to it and writes it back). Every
write transaction moves the store's `generation`, so a process that keeps templates in memory
learns with one cheap query that someone else wrote, and reloads them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from facebone.errors import FaceBoneError
from facebone.gallery.records import GalleryMeta, Subject

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class GalleryStore(ABC):
    """Subjects, faces and templates of one gallery; `meta` says what they were made for."""

    meta: GalleryMeta

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside one `with` block commit together, or none does. It waits for any
        other connection's write transaction to end, then increments the generation (a
        nested `transaction()` joins the outer one and increments nothing)."""

    @abstractmethod
    def generation(self) -> int:
        """How many write transactions the store has committed (0 for a new store); inside a
        transaction of this connection, including that one."""

    @abstractmethod
    def new_subject(self) -> str:
        """Insert a subject with a fresh opaque id (128 random bits, hex) and return the id."""

    @abstractmethod
    def add_face(self, subject: str, digest: str) -> int | None:
        """Insert a face of `subject` whose photo has `digest`; its id, or None when the
        subject already has that photo (a re-run enrolment adds nothing twice)."""

    @abstractmethod
    def put_vector(self, face: int, backbone: str, vector: np.ndarray) -> None:
        """Store a plain or BioHash template (float32) of `face` for `backbone`."""

    @abstractmethod
    def vectors(self, backbone: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Face ids (int64), their subjects, and their templates (N, D) float32."""

    @abstractmethod
    def nearest(self, backbone: str, probe: np.ndarray, k: int) -> list[tuple[int, str, float]]:
        """The `k` faces whose templates have the highest cosine with `probe`, best first:
        (face id, subject, cosine)."""

    @abstractmethod
    def put_block(self, backbone: str, block: int, ciphertexts: list[bytes]) -> None:
        """Store (or replace) the ciphertexts of one CKKS block, one per template coordinate."""

    @abstractmethod
    def blocks(self, backbone: str) -> dict[int, list[bytes]]:
        """Block number -> its ciphertexts."""

    @abstractmethod
    def put_slot(self, face: int, backbone: str, block: int, slot: int) -> None:
        """Record that `face`'s encrypted template is slot `slot` of `block`."""

    @abstractmethod
    def slots(self, backbone: str) -> list[tuple[int, str, int, int]]:
        """(face id, subject, block, slot) of every encrypted template of `backbone`."""

    @abstractmethod
    def delete_subject(self, subject: str) -> list[int]:
        """Remove a subject with its faces, templates and slots; the removed face ids. An
        unknown subject is a FaceBoneError."""

    @abstractmethod
    def subjects(self) -> list[Subject]:
        """Every enrolled subject, oldest first."""

    @abstractmethod
    def has_subject(self, subject: str) -> bool:
        """Whether `subject` is enrolled."""

    def width(self, backbone: str) -> int:
        """The template width of `backbone`; a backbone the gallery lacks is a FaceBoneError."""
        if backbone not in self.meta.backbones:
            raise FaceBoneError(
                f"the gallery has no backbone {backbone!r}; it has {', '.join(self.meta.backbones)}"
            )
        return self.meta.backbones[backbone]

    def checked_template(self, backbone: str, vector: np.ndarray) -> np.ndarray:
        """`vector` as a float32 template of `backbone`: its width, finite numbers only."""
        array = np.asarray(vector, dtype=np.float32)
        width = self.width(backbone)
        if array.shape != (width,) or not np.isfinite(array).all():
            raise FaceBoneError(
                f"a {backbone} template must hold {width} finite numbers (got shape {array.shape})"
            )
        return array

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the store stays as committed."""

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(POSTGRES_SCHEMES)


def open_store(
    location: str | Path, create: bool = False, meta: GalleryMeta | None = None
) -> GalleryStore:
    """The store at `location`: a postgresql:// URL, else a SQLite file path. With `create`,
    a new store with `meta` (an existing one is refused, never overwritten)."""
    if create and meta is None:
        raise ValueError("creating a store needs its meta")
    if is_postgres(location):
        from facebone.gallery.postgres_store import PostgresStore

        return PostgresStore.open(str(location), create, meta)
    from facebone.gallery.sqlite_store import SQLiteStore

    return SQLiteStore.open(Path(location), create, meta)
