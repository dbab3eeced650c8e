"""The SQLite backend of a gallery: one file, private to its owner, that a crash cannot damage.

Why these settings:
- WAL journal with `synchronous=FULL`: a committed enrolment is on disk before `commit`
  returns, so a process killed with SIGKILL (or a power cut) loses nothing committed, and a
  half-done enrolment is rolled back on the next open.
- `secure_delete=ON`: deleted rows are overwritten with zeros in their pages, not left in
  free space; after a deletion commits, `wal_checkpoint(TRUNCATE)` copies the zeroed pages into
  the file and empties the -wal file, so no deleted template stays in either.
- `foreign_keys=ON`: deleting a subject cascades to its faces, vectors and slots in one
  statement.
- A new store is built in a private temporary file beside its destination and linked into
  place only when complete, so there is never half a store, and an existing file is never
  overwritten.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facebone.errors import FaceBoneError
from facebone.gallery.records import GalleryMeta, Subject
from facebone.gallery.store import GalleryStore
from facebone.predictors.base import l2_normalize

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subjects (id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    UNIQUE (subject, digest)
);
CREATE TABLE vectors (
    face INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    backbone TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (face, backbone)
);
CREATE TABLE blocks (
    backbone TEXT NOT NULL,
    block INTEGER NOT NULL,
    coord INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (backbone, block, coord)
);
CREATE TABLE slots (
    face INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    backbone TEXT NOT NULL,
    block INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    PRIMARY KEY (backbone, block, slot)
);
CREATE INDEX slots_face ON slots (face);
"""
# A checkpoint waits for readers of other connections; this many tries, 50 ms apart.
CHECKPOINT_TRIES = 40


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: `transaction()` issues BEGIN IMMEDIATE / COMMIT itself. Another
    # process's write waits up to 30 s for the lock instead of failing at once.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


class SQLiteStore(GalleryStore):
    """A gallery in one SQLite file; open it with `open_store` (or `SQLiteStore.open`)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, meta: GalleryMeta) -> None:
        self.path = path
        self.meta = meta
        self._db = connection
        self._lock = threading.RLock()
        self._depth = 0
        self._deleted = False

    @classmethod
    def open(cls, path: Path, create: bool, meta: GalleryMeta | None) -> SQLiteStore:
        path = Path(path)
        if create:
            cls._create(path, meta)
        elif not path.is_file():
            raise FaceBoneError(f"no gallery at {path} (create one first)")
        try:
            connection = _connect(path)
        except sqlite3.DatabaseError as error:
            raise FaceBoneError(f"{path} is not a FaceBone gallery ({error})") from None
        except sqlite3.Error as error:
            raise FaceBoneError(f"cannot open the gallery {path} ({error})") from None
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'gallery'").fetchone()
            if row is None:
                raise sqlite3.DatabaseError("no gallery metadata")
            stored = GalleryMeta.from_json(row[0])
        except sqlite3.Error as error:
            connection.close()
            raise FaceBoneError(f"{path} is not a FaceBone gallery ({error})") from None
        except FaceBoneError as error:
            connection.close()
            raise FaceBoneError(f"{path}: {error}") from None
        return cls(path, connection, stored)

    @staticmethod
    def _create(path: Path, meta: GalleryMeta) -> None:
        """Build the empty store privately beside `path`, then link it into place."""
        if path.exists():
            raise FaceBoneError(f"{path} already exists; a gallery is never overwritten")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as error:
            raise FaceBoneError(f"cannot create the gallery {path} ({error})") from None
        os.close(fd)  # mkstemp's file is 0600; SQLite gives its -wal and -shm the same mode
        tmp = Path(name)
        try:
            connection = _connect(tmp)
            try:
                connection.executescript(f"BEGIN; {SCHEMA} COMMIT;")
                connection.execute("INSERT INTO meta VALUES ('gallery', ?)", (meta.to_json(),))
            finally:
                connection.close()  # the last connection checkpoints and removes the -wal
            os.link(tmp, path)  # fails if `path` appeared meanwhile: nothing is overwritten
        except FileExistsError:
            raise FaceBoneError(f"{path} already exists; a gallery is never overwritten") from None
        except (OSError, sqlite3.Error) as error:
            raise FaceBoneError(f"cannot create the gallery {path} ({error})") from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE (which waits for another connection's writer) ... COMMIT; a nested
        `transaction()` joins the outer one. After a commit that deleted anything, the -wal
        file is checkpointed and emptied."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                self._db.execute(
                    "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT (key) DO UPDATE"
                    " SET value = CAST(value AS INTEGER) + 1"
                )
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                self._deleted = False
                raise
            finally:
                self._depth = 0
            self._db.execute("COMMIT")
            if self._deleted:
                self._deleted = False
                self._checkpoint()

    def generation(self) -> int:
        row = self._read("SELECT value FROM meta WHERE key = 'generation'")
        return int(row[0][0]) if row else 0

    def _checkpoint(self) -> None:
        for _ in range(CHECKPOINT_TRIES):
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)

    def _write(self, sql: str, parameters: tuple = ()) -> sqlite3.Cursor:
        with self.transaction():
            try:
                return self._db.execute(sql, parameters)
            except sqlite3.IntegrityError as error:
                raise FaceBoneError(f"the gallery refused a write ({error})") from None

    def _read(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def new_subject(self) -> str:
        subject = secrets.token_hex(16)
        self._write("INSERT INTO subjects VALUES (?, ?)", (subject, time.time()))
        return subject

    def add_face(self, subject: str, digest: str) -> int | None:
        if not self.has_subject(subject):
            raise FaceBoneError(f"no subject {subject} in the gallery")
        cursor = self._write(
            "INSERT INTO faces (subject, digest) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (subject, digest),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def put_vector(self, face: int, backbone: str, vector: np.ndarray) -> None:
        vector = self.checked_template(backbone, vector)
        self._write(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", (face, backbone, vector.tobytes())
        )

    def vectors(self, backbone: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        dim = self.width(backbone)
        rows = self._read(
            "SELECT f.id, f.subject, v.vector FROM vectors v JOIN faces f ON f.id = v.face "
            "WHERE v.backbone = ? ORDER BY f.id",
            (backbone,),
        )
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32)
        return ids, [row[1] for row in rows], matrix.reshape(len(rows), dim).copy()

    def nearest(self, backbone: str, probe: np.ndarray, k: int) -> list[tuple[int, str, float]]:
        probe = self.checked_template(backbone, probe)
        ids, subjects, matrix = self.vectors(backbone)
        if not len(ids):
            return []
        cosines = l2_normalize(matrix) @ l2_normalize(probe[None])[0]
        best = np.argsort(-cosines, kind="stable")[:k]
        return [(int(ids[i]), subjects[i], float(cosines[i])) for i in best]

    def put_block(self, backbone: str, block: int, ciphertexts: list[bytes]) -> None:
        dim = self.width(backbone)
        if len(ciphertexts) != dim:
            raise FaceBoneError(f"a {backbone} block has {dim} ciphertexts, got {len(ciphertexts)}")
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?)",
                [(backbone, block, j, data) for j, data in enumerate(ciphertexts)],
            )

    def blocks(self, backbone: str) -> dict[int, list[bytes]]:
        rows = self._read(
            "SELECT block, ciphertext FROM blocks WHERE backbone = ? ORDER BY block, coord",
            (backbone,),
        )
        found: dict[int, list[bytes]] = {}
        for block, data in rows:
            found.setdefault(block, []).append(data)
        return found

    def put_slot(self, face: int, backbone: str, block: int, slot: int) -> None:
        self.width(backbone)
        self._write("INSERT INTO slots VALUES (?, ?, ?, ?)", (face, backbone, block, slot))

    def slots(self, backbone: str) -> list[tuple[int, str, int, int]]:
        return self._read(
            "SELECT s.face, f.subject, s.block, s.slot FROM slots s JOIN faces f ON f.id = s.face "
            "WHERE s.backbone = ? ORDER BY s.block, s.slot",
            (backbone,),
        )

    def delete_subject(self, subject: str) -> list[int]:
        with self.transaction():
            if not self.has_subject(subject):
                raise FaceBoneError(f"no subject {subject} in the gallery")
            faces = [
                row[0] for row in self._read("SELECT id FROM faces WHERE subject = ?", (subject,))
            ]
            self._db.execute("DELETE FROM subjects WHERE id = ?", (subject,))
            self._deleted = True
        return faces

    def subjects(self) -> list[Subject]:
        rows = self._read(
            "SELECT s.id, COUNT(f.id), s.created FROM subjects s LEFT JOIN faces f "
            "ON f.subject = s.id GROUP BY s.id ORDER BY s.created, s.rowid"
        )
        return [Subject(id, int(faces), float(created)) for id, faces, created in rows]

    def has_subject(self, subject: str) -> bool:
        return bool(self._read("SELECT 1 FROM subjects WHERE id = ?", (subject,)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
