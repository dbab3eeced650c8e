"""The results of a study: an SQLite database in its output folder, written as each target
finishes, so a killed run resumes where it stopped.

A target's utility row, its membership attack rows (one per attack x level) and its threat
rows (inversion, extraction, attribute: one per attack x setting) are written in one
transaction: after a kill either all of a target's rows are there or none, and a resumed run
redoes only the targets with none. Each row carries the hash of the configuration that made
it; UNIQUE keys make a second write of a finished cell an error instead of a duplicate.

Beside the database, `study.json` describes the study (its configuration, hash, data root,
versions) and `config.toml` is a copy of the configuration the user ran. A run holds a lock
on the folder (`.study.lock`) as long as its store is open: a second run into the same folder
is refused at once. A damaged database, row or description is one `FaceBoneError` line.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from facebone.atomic import write_text_atomic
from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError
from facebone.studies.records import (
    AttackRecord,
    StudyRecords,
    SystemKey,
    ThreatRecord,
    UtilityRecord,
)

DATABASE = "results.sqlite"
STUDY_FILE = "study.json"
CONFIG_COPY = "config.toml"
LOCK = ".study.lock"
SCHEMA_VERSION = 2  # 2: the threats table
EXPORT_FORMATS = ("json", "csv")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS utility (
    system TEXT NOT NULL, regime TEXT NOT NULL, seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL, record TEXT NOT NULL, finished REAL NOT NULL,
    UNIQUE (system, regime, seed)
);
CREATE TABLE IF NOT EXISTS attacks (
    system TEXT NOT NULL, regime TEXT NOT NULL, attack TEXT NOT NULL, level TEXT NOT NULL,
    seed INTEGER NOT NULL, config_hash TEXT NOT NULL, auc REAL NOT NULL,
    metrics TEXT NOT NULL, roc TEXT NOT NULL, timings TEXT NOT NULL, versions TEXT NOT NULL,
    finished REAL NOT NULL,
    UNIQUE (system, regime, attack, level, seed)
);
CREATE TABLE IF NOT EXISTS threats (
    system TEXT NOT NULL, regime TEXT NOT NULL, family TEXT NOT NULL, attack TEXT NOT NULL,
    setting TEXT NOT NULL, seed INTEGER NOT NULL, config_hash TEXT NOT NULL,
    record TEXT NOT NULL, finished REAL NOT NULL,
    UNIQUE (system, regime, family, attack, setting, seed)
);
"""

# CSV columns: the key, then the figures a table shows.
CSV_COLUMNS = (
    "system",
    "regime",
    "attack",
    "level",
    "seed",
    "auc",
    "advantage",
    "balanced_accuracy",
    "tpr_at_1pct_fpr",
    "tpr_at_0.1pct_fpr",
    "chance_auc",
    "shadows",
    "queries",
    "n_members",
    "n_nonmembers",
    "accuracy",
    "utility_auc",
    "epsilon",
    "seconds",
    "config_hash",
)


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    """Refuse results of another schema version, or missing one of this version's tables
    (a resumed run would re-create it empty, losing its rows silently)."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    version = None
    if "meta" in tables:
        version = connection.execute(
            "SELECT value FROM meta WHERE name = 'schema_version'"
        ).fetchone()
    if version is None or version[0] != str(SCHEMA_VERSION):
        raise FaceBoneError(
            f"{path} has results schema {version and version[0]}, this FaceBone reads "
            f"schema {SCHEMA_VERSION}"
        )
    missing = sorted({"utility", "attacks", "threats"} - tables)
    if missing:
        raise FaceBoneError(
            f"{path} is damaged: its {', '.join(missing)} table is missing (restore it, or "
            "run the study afresh with --force)"
        )


class ResultStore:
    """The results database of one output folder.

    `ResultStore(folder)` opens an existing study's results (an error if there are none);
    `ResultStore.create(folder, study, config_text)` starts or reopens one for a run.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DATABASE
        self._lock: BinaryIO | None = None  # the folder's lock, for a store a run created
        if not self.path.is_file():
            raise FaceBoneError(f"{self.folder} holds no study results ({DATABASE} is missing)")
        with self._connect() as connection:
            _check_schema(connection, self.path)

    @classmethod
    def create(
        cls, folder: str | Path, study: Mapping[str, Any], config_text: str, force: bool = False
    ) -> ResultStore:
        """The store of `folder` for a run of `study` (its `study.json` content, with a
        "config_hash" and the "data" root), locked for this run: created if new; reopened if
        it holds the same study on the same data, so the run resumes. Results of another
        study (or data) are an error, unless `force`, or unless no target finished there:
        then the run starts afresh, replacing them. A folder with other files but no results
        is an error unless `force`, since `study.json` and `config.toml` could replace them."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise FaceBoneError(f"output folder {folder} exists and is not a folder")
        afresh = (folder / DATABASE).exists() and _another_study(folder, study, force)
        held_files = folder.is_dir() and any(folder.iterdir())
        if not (folder / DATABASE).exists() and held_files and not force:
            raise FaceBoneError(
                f"output folder {folder} holds other files and no study results; choose "
                "an empty or new folder (or force it)"
            )
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder)
        if afresh:
            for name in (DATABASE, f"{DATABASE}-journal", STUDY_FILE, CONFIG_COPY):
                (folder / name).unlink(missing_ok=True)
        try:
            with closing(sqlite3.connect(folder / DATABASE)) as connection, connection:
                connection.executescript(_SCHEMA)
                connection.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as error:
            message = f"{folder / DATABASE} cannot be read as study results ({error})"
            raise FaceBoneError(message) from None
        write_text_atomic(folder / STUDY_FILE, json.dumps(study, indent=1) + "\n")
        write_text_atomic(folder / CONFIG_COPY, config_text)
        store = cls(folder)
        store._lock = lock  # held, and released when the store goes
        return store

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path, timeout=30.0)) as connection:
                yield connection
        except sqlite3.DatabaseError as error:
            # A damaged or foreign file is the user's to fix: one sentence, no traceback.
            raise FaceBoneError(f"{self.path} cannot be read as study results ({error})") from None

    def study(self) -> dict[str, Any]:
        """The study's description (`study.json`)."""
        return _read_json(self.folder / STUDY_FILE)

    def data_root(self) -> Path | None:
        """The image folder the study read (`study.json`'s "data"): what is written from its
        results (a report, an export) stays out of it, or its files would be read as photos."""
        data = self.study().get("data")
        return Path(data) if isinstance(data, str) and data else None

    def finished(self) -> dict[SystemKey, str]:
        """The targets whose rows are all written, with the configuration hash of each."""
        with self._connect() as connection:
            rows = connection.execute("SELECT system, regime, seed, config_hash FROM utility")
            return {SystemKey(s, r, seed): h for s, r, seed, h in rows}

    def add(
        self,
        utility: UtilityRecord,
        attacks: Sequence[AttackRecord],
        now: float,
        threats: Sequence[ThreatRecord] = (),
    ) -> None:
        """Write one target's utility, attack and threat rows in one transaction."""
        if any(a.key.system_key != utility.key for a in (*attacks, *threats)):
            raise ValueError("attack and threat records must belong to the utility record's target")
        with self._connect() as connection, connection:
            connection.execute(
                "INSERT INTO utility VALUES (?, ?, ?, ?, ?, ?)",
                (
                    *_system_columns(utility.key),
                    utility.config_hash,
                    json.dumps(utility.to_dict()),
                    now,
                ),
            )
            connection.executemany(
                "INSERT INTO attacks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_attack_row(record, now) for record in attacks],
            )
            connection.executemany(
                "INSERT INTO threats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *_threat_columns(record),
                        record.config_hash,
                        json.dumps(record.to_dict()),
                        now,
                    )
                    for record in threats
                ],
            )

    def utility_records(self) -> list[UtilityRecord]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT record FROM utility ORDER BY system, regime, seed"
            ).fetchall()
        return [self._row(_utility_record, row, "utility") for row in rows]

    def attack_records(self) -> list[AttackRecord]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT system, regime, attack, level, seed, config_hash, metrics, roc, timings, "
                "versions FROM attacks ORDER BY system, regime, attack, level, seed"
            ).fetchall()
        return [self._row(_attack_record, row, "attack") for row in rows]

    def _row(self, read: Callable[[Sequence[Any]], Any], row: Sequence[Any], table: str) -> Any:
        """The record `read` makes of `row`; a damaged row is one line naming the database."""
        try:
            return read(row)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise FaceBoneError(
                f"{self.path} holds a damaged {table} row ({type(error).__name__}: {error}); "
                "rerun the study into a new folder"
            ) from None

    def threat_records(self) -> list[ThreatRecord]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT record FROM threats ORDER BY system, regime, family, attack, setting, seed"
            ).fetchall()
        return [ThreatRecord.from_dict(parse_json(record)) for (record,) in rows]

    def records(self) -> StudyRecords:
        """The study's description and every record, sorted by key."""
        return StudyRecords(
            self.study(),
            tuple(self.utility_records()),
            tuple(self.attack_records()),
            tuple(self.threat_records()),
        )

    def export(self, format: str = "json") -> str:
        """The results as text: JSON (`{"study", "utility", "attacks", "threats"}`, every field
        and ROC point) or CSV (one row per membership attack record with its target's utility,
        no ROC points; threats are in the JSON)."""
        if format not in EXPORT_FORMATS:
            raise FaceBoneError(
                f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}"
            )
        held = self.records()
        if format == "json":
            return (
                json.dumps(
                    {
                        "study": held.study,
                        "utility": [u.to_dict() for u in held.utility],
                        "attacks": [a.to_dict() for a in held.attacks],
                        "threats": [t.to_dict() for t in held.threats],
                    },
                    indent=1,
                )
                + "\n"
            )
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for record in held.attacks:
            utility = held.utility_of(record.key.system_key)
            writer.writerow(_csv_row(record, utility))
        return text.getvalue()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        held = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FaceBoneError(f"cannot read {path}: {error}") from None
    if not isinstance(held, dict):
        raise FaceBoneError(f"{path} is not a study description (a JSON object)")
    return held


def _another_study(folder: Path, study: Mapping[str, Any], force: bool) -> bool:
    """Whether the results in `folder` are of another study (or data) than `study`, which
    may then start afresh there: with `force`, or when none of their targets finished."""
    study_path = folder / STUDY_FILE
    try:
        held = _read_json(study_path) if study_path.is_file() else {}
        finished = len(ResultStore(folder).finished())
    except FaceBoneError:
        if force:
            return True  # damaged results: --force replaces them
        raise
    if held.get("config_hash") == study["config_hash"] and held.get("data") == study["data"]:
        return False
    if force or not finished:
        return True
    if held.get("config_hash") != study["config_hash"]:
        raise FaceBoneError(
            f"{folder} holds results of another study configuration (hash "
            f"{held.get('config_hash')}, this one {study['config_hash']}); choose another "
            "output folder, or force a fresh start there (its results are then replaced)"
        )
    raise FaceBoneError(
        f"{folder} holds results made on the data in {held.get('data')}, not {study['data']}; "
        "resume with that data folder, choose another output, or force a fresh start"
    )


@contextmanager
def study_lock(folder: str | Path) -> Iterator[None]:
    """Hold the lock of the study folder `folder` (which exists) for the block: what follows
    a study in its folder (a canary audit, the report) is not written by two runs at once."""
    lock = _lock(Path(folder))
    try:
        yield
    finally:
        lock.close()


def _lock(folder: Path) -> BinaryIO:
    """An exclusive lock on `folder`'s lock file, held by the open file returned: it ends
    when that file is closed or collected, or with this process. A folder locked by another
    process is an error. A POSIX record lock, not `flock`: worker processes forked while it
    is held do not share it, so it ends with this process even if they outlive it briefly."""
    file = open(folder / LOCK, "ab")  # noqa: SIM115  (open as long as the store lives)
    try:
        fcntl.lockf(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        file.close()
        if error.errno not in (errno.EACCES, errno.EAGAIN):
            raise FaceBoneError(f"cannot lock {folder / LOCK} ({error.strerror})") from None
        raise FaceBoneError(
            f"{folder} is in use by another run writing its results there; wait for it to "
            "end or choose another output folder"
        ) from None
    return file


def _system_columns(key: SystemKey) -> tuple[str, str, int]:
    return key.system, key.regime, key.seed


def _threat_columns(record: ThreatRecord) -> tuple[str, str, str, str, str, int]:
    key = record.key
    return key.system, key.regime, key.family, key.attack, key.setting, key.seed


def _attack_row(record: AttackRecord, now: float) -> tuple:
    data = record.to_dict()
    key = data.pop("key")
    roc = {"fpr": data.pop("roc_fpr"), "tpr": data.pop("roc_tpr")}
    timings = {"seconds": data.pop("seconds")}
    versions = data.pop("versions")
    config_hash = data.pop("config_hash")
    return (
        key["system"],
        key["regime"],
        key["attack"],
        key["level"],
        key["seed"],
        config_hash,
        record.auc,
        json.dumps(data),
        json.dumps(roc),
        json.dumps(timings),
        json.dumps(versions),
        now,
    )


def _utility_record(row: Sequence[Any]) -> UtilityRecord:
    return UtilityRecord.from_dict(parse_json(row[0]))


def _attack_record(row: Sequence[Any]) -> AttackRecord:
    system, regime, attack, level, seed, config_hash, metrics, roc, timings, versions = row
    roc_points = parse_json(roc)
    return AttackRecord.from_dict(
        {
            **parse_json(metrics),
            "key": {
                "system": system,
                "regime": regime,
                "attack": attack,
                "level": level,
                "seed": seed,
            },
            "roc_fpr": roc_points["fpr"],
            "roc_tpr": roc_points["tpr"],
            **parse_json(timings),
            "versions": parse_json(versions),
            "config_hash": config_hash,
        }
    )


def _csv_row(record: AttackRecord, utility: UtilityRecord | None) -> list[Any]:
    key = record.key
    return [
        key.system,
        key.regime,
        key.attack,
        key.level,
        key.seed,
        record.auc,
        record.advantage,
        record.balanced_accuracy,
        record.tpr_at_1pct_fpr,
        record.tpr_at_01pct_fpr,
        record.chance.auc,
        record.shadows,
        record.queries,
        record.n_members,
        record.n_nonmembers,
        utility and utility.accuracy,
        utility and utility.auc,
        utility and utility.epsilon,
        record.seconds,
        record.config_hash,
    ]
