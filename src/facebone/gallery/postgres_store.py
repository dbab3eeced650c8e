"""A gallery on a PostgreSQL server with pgvector, for users who outgrow one machine.

Plain and BioHash templates sit in a pgvector `vector` column and `nearest` ranks them on the
server (`ORDER BY vector <=> probe`), so a search ships one probe and k rows, not the gallery.
The scan is exact, as the contract says: pgvector's HNSW index (0.6) is approximate and returns
at most `hnsw.ef_search` rows (40 by default) whatever the LIMIT, so ranks and accuracy would
differ from the SQLite store; `index.py`'s usearch index is the approximate path for both.
CKKS blocks are bytea. Every table is named `facebone_gallery_*`, so a gallery can share a
database with the user's own tables, and the database holds one gallery.

PostgreSQL keeps a deleted row's bytes in its pages until VACUUM reuses them, and in its WAL and
backups: erasing them from those is the server operator's job (the rows, vectors and slots of a
deleted subject are gone for every reader at once).
"""

from __future__ import annotations

import re
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import psycopg
from psycopg import conninfo, sql
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

from facebone.errors import FaceBoneError
from facebone.gallery.records import GalleryMeta, Subject
from facebone.gallery.store import GalleryStore

PREFIX = "facebone_gallery_"
# Without a timeout, a server that drops packets keeps the CLI waiting for minutes.
CONNECT_TIMEOUT_S = 10

SCHEMA = (
    # `generation` counts the committed write transactions (`GalleryStore.generation`).
    "CREATE TABLE {meta} (meta TEXT NOT NULL, generation BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE {subjects} (id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE {faces} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " subject TEXT NOT NULL REFERENCES {subjects}(id) ON DELETE CASCADE,"
    " digest TEXT NOT NULL, UNIQUE (subject, digest))",
    "CREATE TABLE {vectors} (face BIGINT NOT NULL REFERENCES {faces}(id) ON DELETE CASCADE,"
    " backbone TEXT NOT NULL, vector vector NOT NULL, PRIMARY KEY (face, backbone))",
    "CREATE TABLE {blocks} (backbone TEXT NOT NULL, block INTEGER NOT NULL,"
    " coord INTEGER NOT NULL, ciphertext BYTEA NOT NULL, PRIMARY KEY (backbone, block, coord))",
    "CREATE TABLE {slots} (face BIGINT NOT NULL REFERENCES {faces}(id) ON DELETE CASCADE,"
    " backbone TEXT NOT NULL, block INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " PRIMARY KEY (backbone, block, slot))",
    # The cascade from a deleted face finds its slots by face.
    "CREATE INDEX {slots_face} ON {slots} (face)",
)
TABLES = ("meta", "subjects", "faces", "vectors", "blocks", "slots")


def _names() -> dict[str, sql.Identifier]:
    return {name: sql.Identifier(PREFIX + name) for name in (*TABLES, "slots_face")}


def _query(template: str) -> sql.Composed:
    return sql.SQL(template).format(**_names())


class _VectorDumper(Dumper):
    """A float32 array in pgvector's binary format: width, a reserved zero, big-endian floats."""

    format = Format.BINARY

    def dump(self, obj: np.ndarray) -> bytes:
        return struct.pack(">HH", obj.shape[0], 0) + obj.astype(">f4").tobytes()


class _VectorLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> np.ndarray:
        return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def describe(url: str) -> str:
    """`url` without its password, to name the database in messages and logs."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL given"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host, port = parts.get("host", ""), f":{parts['port']}" if parts.get("port") else ""
    socket = f"?host={host}" if host.startswith("/") else ""
    server = "" if socket else f"{host}{port}"
    return f"postgresql://{user}{server}/{parts.get('dbname', '')}{socket}"


def _reason(error: Exception, url: str) -> str:
    """The error's text on one line, with any password of `url` masked: libpq quotes parts of
    a URL it cannot parse, and a server may echo what it was sent."""
    text = " ".join(str(error).split())
    secrets_in_url = set()
    try:
        password = urlsplit(url).password
        if password:
            secrets_in_url |= {password, unquote(password)}
    except ValueError:
        pass
    try:
        password = conninfo.conninfo_to_dict(url).get("password")
        if password:
            secrets_in_url.add(str(password))
    except psycopg.ProgrammingError:
        pass
    for secret in sorted(secrets_in_url, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*):\S*@", r"\1:***@", text)
    return re.sub(r"password\s*=\s*\S+", "password=***", text)


class PostgresStore(GalleryStore):
    """The gallery in the `facebone_gallery_*` tables of one PostgreSQL database."""

    def __init__(self, connection: psycopg.Connection, url: str, meta: GalleryMeta) -> None:
        self._connection = connection
        self._url = url
        self.meta = meta
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, url: str, create: bool = False, meta: GalleryMeta | None = None) -> PostgresStore:
        """The gallery in the database at `url`; with `create`, a new one holding `meta` (a
        database that already holds a gallery is refused, never overwritten)."""
        if create and meta is None:
            raise ValueError("creating a store needs its meta")
        connection = cls._connect(url)
        try:
            if create:
                cls._create(connection, url, meta)
            stored = cls._read_meta(connection, url)
            info = TypeInfo.fetch(connection, "vector")
            if info is None:
                raise FaceBoneError(f"{describe(url)} has lost the pgvector extension")
            connection.adapters.register_dumper(
                np.ndarray, type("VectorDumper", (_VectorDumper,), {"oid": info.oid})
            )
            connection.adapters.register_loader(info.oid, _VectorLoader)
        except psycopg.Error as error:
            connection.close()
            raise FaceBoneError(
                f"cannot read the gallery in {describe(url)} ({_reason(error, url)})"
            ) from None
        except BaseException:
            connection.close()
            raise
        return cls(connection, url, stored)

    @staticmethod
    def _connect(url: str) -> psycopg.Connection:
        try:
            options = conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as error:
            raise FaceBoneError(
                f"the PostgreSQL URL is not valid ({_reason(error, url)})"
            ) from None
        extra = {} if "connect_timeout" in options else {"connect_timeout": CONNECT_TIMEOUT_S}
        try:
            return psycopg.connect(url, autocommit=True, **extra)
        except psycopg.Error as error:
            raise FaceBoneError(
                f"cannot connect to {describe(url)} ({_reason(error, url)})"
            ) from None

    @staticmethod
    def _missing_tables(connection: psycopg.Connection) -> list[str]:
        rows = connection.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
            ([PREFIX + name for name in TABLES],),
        ).fetchall()
        return [name for (name,) in rows]

    @classmethod
    def _create(cls, connection: psycopg.Connection, url: str, meta: GalleryMeta) -> None:
        try:
            with connection.transaction():
                # Two processes creating at once: the second waits, then sees the first's gallery.
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (PREFIX,))
                if len(cls._missing_tables(connection)) < len(TABLES):
                    raise FaceBoneError(
                        f"a FaceBone gallery already exists in {describe(url)};"
                        " a gallery is never overwritten"
                    )
                connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
                for statement in SCHEMA:
                    connection.execute(_query(statement))
                connection.execute(
                    _query("INSERT INTO {meta} (meta) VALUES (%s)"), (meta.to_json(),)
                )
        except psycopg.Error as error:
            raise FaceBoneError(
                f"cannot create a gallery in {describe(url)} ({_reason(error, url)}); the server"
                " needs the pgvector extension and the user the right to create tables"
            ) from None

    @classmethod
    def _read_meta(cls, connection: psycopg.Connection, url: str) -> GalleryMeta:
        missing = cls._missing_tables(connection)
        if len(missing) == len(TABLES):
            raise FaceBoneError(f"{describe(url)} holds no FaceBone gallery")
        if missing:
            raise FaceBoneError(
                f"the gallery in {describe(url)} is damaged (missing {', '.join(missing)})"
            )
        rows = connection.execute(_query("SELECT meta FROM {meta}")).fetchall()
        if len(rows) != 1:
            raise FaceBoneError(
                f"the gallery in {describe(url)} is damaged ({len(rows)} metadata rows)"
            )
        try:
            return GalleryMeta.from_json(rows[0][0])
        except FaceBoneError as error:
            raise FaceBoneError(f"{describe(url)}: {error}") from None

    def _lost(self, error: psycopg.OperationalError) -> FaceBoneError:
        return FaceBoneError(
            f"lost the connection to {describe(self._url)} ({_reason(error, self._url)})"
        )

    def _execute(self, template: str, params: tuple = (), binary: bool = False) -> psycopg.Cursor:
        try:
            with self._lock:
                return self._connection.execute(_query(template), params, binary=binary)
        except psycopg.OperationalError as error:
            raise self._lost(error) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT (a nested one is a savepoint). The lock keeps another thread's
        statements out of this transaction, as the SQLite store does; the generation's row
        lock, taken first, keeps another connection's write transaction out until this one
        ends (READ COMMITTED alone would let two encrypted enrolments both read a block and
        the second overwrite the first's addition)."""
        try:
            with self._lock, self._connection.transaction():
                self._depth += 1
                try:
                    if self._depth == 1:
                        self._execute("UPDATE {meta} SET generation = generation + 1")
                    yield
                finally:
                    self._depth -= 1
        except psycopg.OperationalError as error:
            raise self._lost(error) from None

    def generation(self) -> int:
        return int(self._execute("SELECT generation FROM {meta}").fetchone()[0])

    def _write(self, template: str, params: tuple = ()) -> psycopg.Cursor:
        with self.transaction():
            return self._execute(template, params)

    def new_subject(self) -> str:
        subject = secrets.token_hex(16)
        self._write("INSERT INTO {subjects} (id, created) VALUES (%s, %s)", (subject, time.time()))
        return subject

    def add_face(self, subject: str, digest: str) -> int | None:
        if not self.has_subject(subject):
            raise FaceBoneError(f"no subject {subject!r} in the gallery")
        row = self._write(
            "INSERT INTO {faces} (subject, digest) VALUES (%s, %s)"
            " ON CONFLICT (subject, digest) DO NOTHING RETURNING id",
            (subject, digest),
        ).fetchone()
        return None if row is None else int(row[0])

    def put_vector(self, face: int, backbone: str, vector: np.ndarray) -> None:
        self._write(
            "INSERT INTO {vectors} (face, backbone, vector) VALUES (%s, %s, %b)"
            " ON CONFLICT (face, backbone) DO UPDATE SET vector = excluded.vector",
            (face, backbone, self.checked_template(backbone, vector)),
        )

    def vectors(self, backbone: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        width = self.width(backbone)
        rows = self._execute(
            "SELECT v.face, f.subject, v.vector FROM {vectors} v JOIN {faces} f ON f.id = v.face"
            " WHERE v.backbone = %s ORDER BY v.face",
            (backbone,),
            binary=True,
        ).fetchall()
        faces = np.array([row[0] for row in rows], dtype=np.int64)
        matrix = np.stack([row[2] for row in rows]) if rows else np.empty((0, width), np.float32)
        return faces, [row[1] for row in rows], matrix

    def nearest(self, backbone: str, probe: np.ndarray, k: int) -> list[tuple[int, str, float]]:
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        rows = self._execute(
            "SELECT v.face, f.subject, v.vector <=> %b AS distance"
            " FROM {vectors} v JOIN {faces} f ON f.id = v.face"
            " WHERE v.backbone = %s ORDER BY distance, v.face LIMIT %s",
            (self.checked_template(backbone, probe), backbone, int(k)),
        ).fetchall()
        return [(int(face), subject, 1.0 - float(distance)) for face, subject, distance in rows]

    def put_block(self, backbone: str, block: int, ciphertexts: list[bytes]) -> None:
        width = self.width(backbone)
        if len(ciphertexts) != width:
            raise FaceBoneError(
                f"a {backbone} block has {width} ciphertexts, not {len(ciphertexts)}"
            )
        with self.transaction():
            self._execute(
                "DELETE FROM {blocks} WHERE backbone = %s AND block = %s", (backbone, block)
            )
            with self._connection.cursor() as cursor:
                cursor.executemany(
                    _query(
                        "INSERT INTO {blocks} (backbone, block, coord, ciphertext)"
                        " VALUES (%s, %s, %s, %b)"
                    ),
                    [(backbone, block, coord, bytes(ct)) for coord, ct in enumerate(ciphertexts)],
                )

    def blocks(self, backbone: str) -> dict[int, list[bytes]]:
        rows = self._execute(
            "SELECT block, ciphertext FROM {blocks} WHERE backbone = %s ORDER BY block, coord",
            (backbone,),
            binary=True,
        ).fetchall()
        found: dict[int, list[bytes]] = {}
        for block, ciphertext in rows:
            found.setdefault(int(block), []).append(bytes(ciphertext))
        return found

    def put_slot(self, face: int, backbone: str, block: int, slot: int) -> None:
        self.width(backbone)
        self._write(
            "INSERT INTO {slots} (face, backbone, block, slot) VALUES (%s, %s, %s, %s)",
            (face, backbone, block, slot),
        )

    def slots(self, backbone: str) -> list[tuple[int, str, int, int]]:
        rows = self._execute(
            "SELECT s.face, f.subject, s.block, s.slot FROM {slots} s"
            " JOIN {faces} f ON f.id = s.face WHERE s.backbone = %s ORDER BY s.block, s.slot",
            (backbone,),
        ).fetchall()
        return [(int(face), subject, int(block), int(slot)) for face, subject, block, slot in rows]

    def delete_subject(self, subject: str) -> list[int]:
        with self.transaction():
            faces = self._execute(
                "DELETE FROM {faces} WHERE subject = %s RETURNING id", (subject,)
            ).fetchall()
            if self._execute("DELETE FROM {subjects} WHERE id = %s", (subject,)).rowcount == 0:
                raise FaceBoneError(f"no subject {subject!r} in the gallery")
        return sorted(int(face) for (face,) in faces)

    def subjects(self) -> list[Subject]:
        rows = self._execute(
            "SELECT s.id, count(f.id), s.created FROM {subjects} s"
            " LEFT JOIN {faces} f ON f.subject = s.id GROUP BY s.id ORDER BY s.created, s.id"
        ).fetchall()
        return [
            Subject(id=id_, faces=int(faces), created=float(created))
            for id_, faces, created in rows
        ]

    def has_subject(self, subject: str) -> bool:
        row = self._execute(
            "SELECT EXISTS (SELECT 1 FROM {subjects} WHERE id = %s)", (subject,)
        ).fetchone()
        return bool(row[0])

    def close(self) -> None:
        self._connection.close()
