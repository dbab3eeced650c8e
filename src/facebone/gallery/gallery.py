"""`Gallery`: enrol people under opaque ids, verify a photo against one (1:1), identify a photo
among all (1:N), and delete a person, with the templates of a trained system.

The gallery belongs to one trained system and its keys. Templates are what the system stores
and matches (`FRSystem.protect`): plain embeddings, BioHash bits, or unit vectors kept only
encrypted (CKKS). Each query is answered as the system answers a pair: through the backbone it
draws for the query, with its calibrated predictor; a subject's probability is the highest of
its faces'. Verification (1:1) decides at the system's threshold; identification (1:N) names the
best subject only at or above the gallery's open-set threshold (`_naming_threshold`), so that a
stranger is not named as whoever they resemble most.
No score ever leaves the gallery: scores would tell a client who is enrolled and how close a
probe comes to them.

Search: plain and BioHash templates through `index.TemplateIndex` (exact, or HNSW above
`ANN_THRESHOLD`), which proposes the `CANDIDATES` nearest faces by cosine for the predictor to
score; encrypted templates are all scored under encryption (`encrypted.py`).

The in-memory indexes follow this object's own writes, and every search first reads the
store's generation (one small query): when another process (a second `serve` on the same
database, a CLI enrolment beside `serve`) has written since, the indexes are reloaded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facebone.errors import FaceBoneError
from facebone.gallery.index import TemplateIndex
from facebone.gallery.records import GalleryMeta, Identification, Subject
from facebone.gallery.store import GalleryStore, open_store
from facebone.system.fr_system import THRESHOLD, FRSystem
from facebone.system.model_dir import read_config

if TYPE_CHECKING:  # tenseal loads only for encrypted galleries
    from facebone.gallery.encrypted import EncryptedIndex

# Faces the index proposes for the predictor to score in a 1:N search.
CANDIDATES = 20
# From this many probes against one subject of an encrypted gallery, the key holder decrypts
# the subject's templates (D decryptions per block: 0.19 s for 128-D on one core) rather than
# matching each probe under encryption (D products per block: 0.029 s a probe). One probe,
# the service's 1:1 query, is always matched under encryption.
DECRYPTED_MATCH_FROM = 8
# Identification's open-set threshold. The 1:1 threshold tried against N people names a
# stranger whenever one of N impostor comparisons clears it: with SFace + cosine and 1,000
# people enrolled, 65% of strangers were named (seed 0). Every enrolled person is a stranger
# to the others, so the gallery measures its threshold on itself: FPIR_SAMPLE enrolled faces
# are searched among the other subjects, and the threshold is the (1 - TARGET_FPIR) quantile
# of their best matches (never below the 1:1 threshold), measured again once the number
# enrolled has changed by REESTIMATE_AFTER of itself.
TARGET_FPIR = 0.01
FPIR_SAMPLE = 2000
REESTIMATE_AFTER = 0.1
_DIGEST_DOMAIN = b"facebone gallery photo digest\n"


@dataclass(frozen=True)
class Enrolment:
    """Faces of one subject, already embedded: `embeddings` {backbone: (n, D)} of n photos
    whose digests (`Gallery.photo_digest`) are `digests`; `subject` None for a new subject."""

    embeddings: Mapping[str, np.ndarray]
    digests: Sequence[str]
    subject: str | None = None


def model_identity(model_dir: str | Path) -> str:
    """SHA-256 of what a model's templates depend on: its backbones (and their weights' cache
    keys), attribute suppression, template protection and key fingerprint. A model retrained
    without a person (erasure) keeps it; a model whose templates would differ does not."""
    config = read_config(model_dir)
    system = config.get("system", {})
    parts = {
        "backbones": [b.get("cache_key") for b in config.get("backbones", [])],
        "attribute_suppression": system.get("attribute_suppression"),
        "suppression_sha256": (config.get("suppression") or {}).get("sha256"),
        "template_protection": system.get("template_protection"),
        "key_fingerprint": config.get("key_fingerprint"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _meta_for(system: FRSystem, model_dir: str | Path) -> GalleryMeta:
    system.check_fitted()
    return GalleryMeta(
        protection=system.template_protection,
        backbones={
            b.name: system._template_dim(b.name, b.embedding_dim)
            for b in system.embedder_.backbones
        },
        key_fingerprint=read_config(model_dir).get("key_fingerprint"),
        model_sha256=model_identity(model_dir),
        created=time.time(),
    )


class Gallery:
    """Subjects and their templates in a `GalleryStore`, matched by `system`. Make one with
    `Gallery.create` or `Gallery.open`; `approximate` forces (True) or forbids (False) the
    HNSW index for plain templates, None decides by size."""

    def __init__(
        self, store: GalleryStore, system: FRSystem, approximate: bool | None = None
    ) -> None:
        self.store = store
        self.system = system
        self.approximate = approximate
        self._names = list(system.embedder_.names)
        self._indexes: dict[str, TemplateIndex | EncryptedIndex] = {}
        # The store generation the indexes reflect (None: whatever the store holds now).
        self._seen: int | None = None
        # Answering mode (a backbone, None: the ensemble) -> (subjects then, threshold).
        self._thresholds: dict[int | None, tuple[int, float]] = {}
        self._digest_key = _digest_key(system)

    @classmethod
    def create(
        cls, location: str | Path, system: FRSystem, model_dir: str | Path, **options
    ) -> Gallery:
        """A new, empty gallery for `system` (loaded from `model_dir`); an existing store is
        refused."""
        return cls(
            open_store(location, create=True, meta=_meta_for(system, model_dir)), system, **options
        )

    @classmethod
    def open(
        cls, location: str | Path, system: FRSystem, model_dir: str | Path, **options
    ) -> Gallery:
        """The gallery at `location`, refused when it was made for another model or key."""
        expected = _meta_for(system, model_dir)
        store = open_store(location)
        stored = store.meta
        other_model = "it was made for another model (other backbones or template protection)"
        problem = None
        if (stored.protection, stored.backbones) != (expected.protection, expected.backbones):
            problem = other_model
        elif stored.key_fingerprint != expected.key_fingerprint:
            problem = "its templates were made with another key"
        elif stored.model_sha256 != expected.model_sha256:
            problem = other_model
        if problem:
            store.close()
            raise FaceBoneError(f"the gallery {location} does not belong to {model_dir}: {problem}")
        return cls(store, system, **options)

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._indexes.clear()
        self.store.close()

    @property
    def encrypted(self) -> bool:
        return self.store.meta.protection == "ckks"

    # -- enrolment and deletion -----------------------------------------------------------

    def photo_digest(self, path: str | Path) -> str:
        """What identifies a photo in the store: HMAC-SHA256 of its bytes keyed by a secret
        derived from the system's keys (a thief cannot test whether a photo is enrolled), or
        plain SHA-256 without keys (the templates are readable then anyway)."""
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise FaceBoneError(f"cannot read {path} ({error.strerror or error})") from None
        if self._digest_key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._digest_key, data, hashlib.sha256).hexdigest()

    def enroll(
        self, photos: Sequence[str | Path], subject: str | None = None, convert_color: bool = False
    ) -> str:
        """Enrol the face (face 1) of each photo as one subject, all or nothing; the subject's
        id (a new one when `subject` is None). Photos already enrolled for the subject are
        skipped, so a re-run adds nothing twice."""
        return self.enroll_many(self.enrolments([photos], [subject], convert_color))[0]

    def enrolments(
        self,
        photo_groups: Sequence[Sequence[str | Path]],
        subjects: Sequence[str | None] | None = None,
        convert_color: bool = False,
    ) -> list[Enrolment]:
        """The `Enrolment` of each group of photos of one person (face 1 of each), for
        `enroll_many`; all the groups' faces are embedded together (batches through the
        backbones). `subjects`: the enrolled subject of each group, None for a new one."""
        subjects = [None] * len(photo_groups) if subjects is None else list(subjects)
        if any(not photos for photos in photo_groups):
            raise FaceBoneError("enrolment needs at least one photo")
        digests = [[self.photo_digest(path) for path in photos] for photos in photo_groups]
        embedder = self.system.embedder_
        faces = [embedder.photo_face(p, convert_color, 1) for ps in photo_groups for p in ps]
        embedded = embedder.embed_faces(faces, self._names)
        made, start = [], 0
        for group, subject in zip(digests, subjects, strict=True):
            end = start + len(group)
            made.append(Enrolment({n: e[start:end] for n, e in embedded.items()}, group, subject))
            start = end
        return made

    def enroll_embeddings(
        self,
        embeddings: Mapping[str, np.ndarray],
        digests: Sequence[str],
        subject: str | None = None,
    ) -> str:
        """`enroll` of faces already embedded: `embeddings` {backbone: (n, D)} of n faces
        whose photos have `digests`."""
        return self.enroll_many([Enrolment(embeddings, digests, subject)])[0]

    def enroll_many(
        self,
        enrolments: Sequence[Enrolment],
        before_commit: Callable[[list[str]], None] | None = None,
    ) -> list[str]:
        """Several `enroll_embeddings` in one transaction, all or nothing; their subject ids.
        Encrypted templates pay D encryptions per packed block touched by a transaction
        (`encrypted.py`), so enrolling many people at once is what makes that fast.
        `before_commit(subject ids)` runs inside the transaction, last: what it raises rolls
        the enrolment back (a caller records the ids it is about to commit)."""
        if not enrolments:
            raise FaceBoneError("nothing to enrol")
        checked = []
        for item in enrolments:
            if len(set(item.digests)) != len(item.digests):
                raise FaceBoneError("the same photo is given twice for one subject")
            checked.append(self._templates(item.embeddings, len(item.digests)))
        subjects, faces, owners = [], [], []
        rows: dict[str, list[np.ndarray]] = {name: [] for name in self._names}
        with self.store.transaction():
            for item, templates in zip(enrolments, checked, strict=True):
                subject = item.subject
                if subject is None:
                    subject = self.store.new_subject()
                elif not self.store.has_subject(subject):
                    raise FaceBoneError(f"no subject {subject} in the gallery")
                subjects.append(subject)
                added = [(i, self.store.add_face(subject, d)) for i, d in enumerate(item.digests)]
                kept = [i for i, face in added if face is not None]
                faces += [face for _, face in added if face is not None]
                owners += [subject] * len(kept)
                for name in self._names:
                    rows[name].append(templates[name][kept])
            written = {name: np.concatenate(parts) for name, parts in rows.items()}
            if faces:
                self._write_templates(faces, written)
            mine = self.store.generation()
            if before_commit is not None:
                before_commit(subjects)
        self._after_enrolment(faces, owners, written, mine)
        return subjects

    def _templates(self, embeddings: Mapping[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        if count < 1:
            raise FaceBoneError("enrolment needs at least one face")
        templates = {}
        for name in self._names:
            if name not in embeddings:
                raise FaceBoneError(
                    f"no {name} embeddings given; the system uses {', '.join(self._names)}"
                )
            matrix = np.asarray(embeddings[name])
            if matrix.ndim != 2 or len(matrix) != count:
                raise FaceBoneError(f"{name} embeddings must be ({count}, D), got {matrix.shape}")
            templates[name] = self.system.protect(name, matrix)
        return templates

    def _write_templates(self, faces: list[int], templates: dict[str, np.ndarray]) -> None:
        for name, matrix in templates.items():
            if self.encrypted:
                self._encrypted_index(name, fresh=True).enrol(self.store, faces, matrix)
            else:
                for face, vector in zip(faces, matrix, strict=True):
                    self.store.put_vector(face, name, vector)

    def _follows(self, mine: int) -> bool:
        """After this object's own write transaction, committed as generation `mine`: may the
        indexes be brought up to it by that write alone? Not when another process wrote
        before it: then they are dropped, to be reloaded."""
        if self._seen == mine - 1:
            self._seen = mine
            return True
        self._indexes.clear()
        self._seen = None
        return False

    def _sync(self) -> None:
        """Before a search: drop the indexes if another process wrote since they were read."""
        generation = self.store.generation()
        if generation != self._seen:
            self._indexes.clear()
            self._seen = generation

    def _after_enrolment(
        self, faces: list[int], subjects: list[str], templates: dict[str, np.ndarray], mine: int
    ) -> None:
        """Bring the in-memory indexes up to the committed store."""
        if not self._follows(mine):
            return
        for name, matrix in templates.items():
            index = self._indexes.get(name)
            if isinstance(index, TemplateIndex):
                index.add(np.array(faces, dtype=np.int64), subjects, matrix)
            else:
                self._indexes.pop(name, None)

    def delete(self, subject: str) -> int:
        """Remove a subject's faces and templates from the store and the indexes (zeroing
        encrypted slots with the key); the number of faces removed."""
        with self.store.transaction():
            if not self.store.has_subject(subject):
                raise FaceBoneError(f"no subject {subject} in the gallery")
            encrypted = (
                [self._encrypted_index(n, fresh=True) for n in self._names]
                if self.encrypted
                else []
            )
            faces = self.store.delete_subject(subject)
            for index in encrypted:
                index.erase(self.store, self.system.protections_[index.backbone], faces)
            mine = self.store.generation()
        self._thresholds.clear()  # measured on the deleted person's faces too
        if not self._follows(mine):
            return len(faces)
        for name in self._names:
            index = self._indexes.get(name)
            if isinstance(index, TemplateIndex):
                index.remove(faces)
            else:
                self._indexes.pop(name, None)
        return len(faces)

    def subjects(self) -> list[Subject]:
        return self.store.subjects()

    # -- matching -------------------------------------------------------------------------

    def identify(self, photo: str | Path, convert_color: bool = False) -> Identification:
        """The enrolled subject the photo's face (face 1) matches, or None; never a score."""
        sources = self.system._query_sources(1)
        return self._identify(sources, self._embed_photo(photo, convert_color, sources))

    def identify_embeddings(self, embeddings: Mapping[str, np.ndarray]) -> Identification:
        """`identify` of a face already embedded: {backbone: (D,)} (the drawn backbone's at
        least)."""
        return self._identify(self.system._query_sources(1), embeddings)

    def best_subject_embeddings(
        self, embeddings: Mapping[str, np.ndarray]
    ) -> tuple[str | None, bool]:
        """For evaluation (rank-1): the most probable subject of a face already embedded,
        whatever the threshold, and whether it clears it. Still no score; the service never
        calls it, as the best subject below the threshold says who a stranger resembles."""
        sources = self.system._query_sources(1)
        subject, probability, _ = self._best(sources, embeddings)
        return subject, probability >= self._naming_threshold(sources)

    def _identify(
        self, sources: np.ndarray | None, embeddings: Mapping[str, np.ndarray]
    ) -> Identification:
        subject, probability, backbone = self._best(sources, embeddings)
        named = probability >= self._naming_threshold(sources)
        return Identification(subject if named else None, backbone)

    def _naming_threshold(self, sources: np.ndarray | None) -> float:
        """The open-set threshold of the query's answering mode (see TARGET_FPIR)."""
        mode = None if sources is None else int(sources[0])
        ks = list(range(len(self._names))) if mode is None else [mode]
        name = self._names[ks[0]]
        count = (
            len(set(self._encrypted_index(name).subjects))
            if self.encrypted
            else self._plain_index(name).subject_count
        )
        known = self._thresholds.get(mode)
        if known is None or abs(count - known[0]) > REESTIMATE_AFTER * known[0]:
            known = self._thresholds[mode] = (count, self._estimate_threshold(ks))
        return known[1]

    def _estimate_threshold(self, ks: list[int]) -> float:
        """Search a seeded sample of enrolled faces among the other subjects, through the
        backbones `ks`: the (1 - TARGET_FPIR) quantile of the best match, or the 1:1
        threshold when higher."""
        indexes = {k: self._searchable(k) for k in ks}
        first = indexes[ks[0]]
        subjects = first.subjects()
        if len(subjects) < 2:
            return THRESHOLD
        sample = np.random.default_rng(0).permutation(len(subjects))[:FPIR_SAMPLE]
        best = []
        for subject in (subjects[i] for i in sample):
            face = int(first.ids_at(first.rows_of({subject})[:1])[0])
            scores = self._scores(ks, {k: indexes[k].template_of(face) for k in ks}, indexes)
            scores.pop(subject, None)
            best.append(max(scores.values(), default=0.0))
        quantile = float(np.quantile(best, 1 - TARGET_FPIR, method="higher"))
        return max(THRESHOLD, float(np.nextafter(quantile, 1.0)))

    def _searchable(self, k: int) -> TemplateIndex:
        """Backbone k's templates as a plain index: the store's, or, when encrypted, their
        decryption by the key holder (this process), which never leaves it."""
        name = self._names[k]
        if not self.encrypted:
            return self._plain_index(name)
        index = self._encrypted_index(name)
        units = index.templates(self.system.protections_[name], np.arange(len(index.ids)))
        return TemplateIndex(index.ids, index.subjects, units, self.approximate)

    def verify(self, subject: str, photo: str | Path, convert_color: bool = False) -> bool:
        """Is the photo's face (face 1) the enrolled `subject`? (1:1)"""
        if not self.store.has_subject(subject):
            raise FaceBoneError(f"no subject {subject} in the gallery")
        sources = self.system._query_sources(1)
        embedded = self._embed_photo(photo, convert_color, sources)
        single = {name: np.asarray(e)[None] for name, e in embedded.items()}
        return bool(self._matches(subject, single, sources)[0])

    def matches(self, subject: str, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each row's 1:1 decision against `subject`: raw backbone embeddings {backbone:
        (N, D)}, each row answered through the backbone the system draws for it."""
        if not self.store.has_subject(subject):
            raise FaceBoneError(f"no subject {subject} in the gallery")
        count = {len(np.asarray(e)) for e in embeddings.values()}
        if len(count) != 1:
            raise FaceBoneError("every backbone's embeddings must have the same number of rows")
        return self._matches(subject, embeddings, self.system._query_sources(count.pop()))

    def _embed_photo(
        self, photo: str | Path, convert_color: bool, sources: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        embedder = self.system.embedder_
        wanted = self._names if sources is None else [self._names[s] for s in sources]
        embedded = embedder.embed_faces([embedder.photo_face(photo, convert_color, 1)], wanted)
        return {name: e[0] for name, e in embedded.items()}

    def _best(
        self, sources: np.ndarray | None, embeddings: Mapping[str, np.ndarray]
    ) -> tuple[str | None, float, str]:
        """The most probable subject, its probability and what answered: the drawn backbone,
        or "ensemble" (the mean over backbones, as the system's ensemble answers)."""
        self._sync()
        ks = range(len(self._names)) if sources is None else [int(sources[0])]
        scores = self._scores(ks, {k: self._probe(k, embeddings) for k in ks})
        answered = "ensemble" if sources is None else self._names[ks[0]]
        if not scores:
            return None, 0.0, answered
        best = max(scores, key=scores.get)
        return best, scores[best], answered

    def _scores(
        self,
        ks: Sequence[int],
        probes: Mapping[int, np.ndarray],
        indexes: Mapping[int, TemplateIndex] | None = None,
    ) -> dict[str, float]:
        """Subject -> probability of the protected `probes` {backbone: (D,)} through the
        backbones `ks` (several: the ensemble's mean), searched in the gallery's indexes or
        the plain `indexes` given."""

        def candidates(k: int, subjects: set[str] | None = None) -> dict[str, float]:
            index = None if indexes is None else indexes[k]
            return self._candidates(k, probes[k], subjects, index)

        per_backbone = [candidates(k) for k in ks]
        if len(per_backbone) == 1:
            return per_backbone[0]
        # A subject one backbone's index did not propose is scored exactly there (all such
        # subjects in one call of the predictor).
        union = set().union(*per_backbone)
        for k, found in zip(ks, per_backbone, strict=True):
            missing = union - set(found)
            if missing:
                found.update(dict.fromkeys(missing, 0.0))
                found.update(candidates(k, missing))
        return {s: float(np.mean([found[s] for found in per_backbone])) for s in union}

    def _probe(self, k: int, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        name = self._names[k]
        if name not in embeddings:
            raise FaceBoneError(f"no {name} embedding given for the backbone drawn")
        return self.system.protect(name, np.asarray(embeddings[name])[None])[0]

    def _candidates(
        self,
        k: int,
        probe: np.ndarray,
        subjects: set[str] | None = None,
        plain: TemplateIndex | None = None,
    ) -> dict[str, float]:
        """Subject -> highest probability of its faces among the candidates of backbone k:
        the index's nearest faces, or every face of `subjects` (encrypted: every face); in
        the `plain` index when given."""
        name = self._names[k]
        if self.encrypted and plain is None:
            index = self._encrypted_index(name)
            owners = index.subjects
            probabilities = self._calibrated(
                k, index.cosines(self.system.protections_[name], probe)
            )
        else:
            index = plain or self._plain_index(name)
            rows = index.search(probe, CANDIDATES) if subjects is None else index.rows_of(subjects)
            owners = index.subjects_at(rows)
            probabilities = self._predicted(k, probe[None], index.templates_at(rows))[0]
        best: dict[str, float] = {}
        for subject, p in zip(owners, probabilities, strict=True):
            best[subject] = max(float(p), best.get(subject, 0.0))
        return best

    def _matches(
        self, subject: str, embeddings: Mapping[str, np.ndarray], sources: np.ndarray | None
    ) -> np.ndarray:
        self._sync()
        n = len(next(iter(embeddings.values())))
        if sources is None:
            per_backbone = [
                self._subject_probabilities(k, subject, self._probes(k, embeddings))
                for k in range(len(self._names))
            ]
            return np.mean(per_backbone, axis=0) >= THRESHOLD
        probabilities = np.zeros(n)
        for k in np.unique(sources):
            rows = sources == k
            probes = self._probes(int(k), embeddings)[rows]
            probabilities[rows] = self._subject_probabilities(int(k), subject, probes)
        return probabilities >= THRESHOLD

    def _probes(self, k: int, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        name = self._names[k]
        if name not in embeddings:
            raise FaceBoneError(f"no {name} embeddings given for the backbone drawn")
        return self.system.protect(name, np.asarray(embeddings[name]))

    def _subject_probabilities(self, k: int, subject: str, probes: np.ndarray) -> np.ndarray:
        """For each probe template (n, D), the highest probability over `subject`'s faces."""
        name = self._names[k]
        if self.encrypted:
            index = self._encrypted_index(name)
            rows = np.array([i for i, s in enumerate(index.subjects) if s == subject], dtype=int)
            key = self.system.protections_[name]
            if len(probes) >= DECRYPTED_MATCH_FROM:
                units = probes / np.linalg.norm(probes, axis=1, keepdims=True)
                cosines = units @ index.templates(key, rows).T
                scores = self._calibrated(k, cosines.ravel()).reshape(cosines.shape)
            else:
                scores = [self._calibrated(k, index.cosines(key, p, rows)) for p in probes]
        else:
            index = self._plain_index(name)
            scores = self._predicted(k, probes, index.templates_at(index.rows_of({subject})))
        return np.array([np.max(s) if len(s) else 0.0 for s in scores])

    def _predicted(self, k: int, probes: np.ndarray, templates: np.ndarray) -> np.ndarray:
        """The predictor's probability for every (probe, template) pair: (n, m)."""
        n, m = len(probes), len(templates)
        if not m:
            return np.zeros((n, 0))
        e1 = np.zeros((n * m, self.system.embedding_dim_), dtype=np.float32)
        e2 = np.zeros_like(e1)
        e1[:, : probes.shape[1]] = np.repeat(probes, m, axis=0)
        e2[:, : templates.shape[1]] = np.tile(templates, (n, 1))
        sources = np.full(n * m, k, dtype=np.int64)
        return self.system.predictor_.predict_proba(e1, e2, sources).reshape(n, m)

    def _calibrated(self, k: int, cosines: np.ndarray) -> np.ndarray:
        if not len(cosines):
            return cosines
        sources = np.full(len(cosines), k, dtype=np.int64)
        return self.system.predictor_.predict_proba_of_scores(cosines, sources)

    def warm_up(self) -> None:
        """Load every backbone's index now, as the first search would: an HNSW graph over
        100,000 templates takes minutes to build on 2 cores, which a server spends before its
        first client rather than during its first request; then the open-set threshold of
        every way the system answers."""
        self._sync()
        for name in self._names:
            if self.encrypted:
                self._encrypted_index(name).parse_all()
            else:
                self._plain_index(name)
        drawn = self.system._query_sources(1) is not None
        for k in range(len(self._names)) if drawn else [None]:
            self._naming_threshold(None if k is None else np.array([k]))

    def _plain_index(self, name: str) -> TemplateIndex:
        if name not in self._indexes:
            ids, subjects, templates = self.store.vectors(name)
            self._indexes[name] = TemplateIndex(ids, subjects, templates, self.approximate)
        return self._indexes[name]

    def _encrypted_index(self, name: str, fresh: bool = False) -> EncryptedIndex:
        """The encrypted templates of backbone `name`; `fresh` reads them from the store (in
        a write transaction: what the write builds on)."""
        if fresh or name not in self._indexes:
            from facebone.gallery.encrypted import EncryptedIndex
            from facebone.protection.ckks import _load_context

            key = self.system.protections_[name]
            context = _load_context(key.public_context(), private=False)
            index = EncryptedIndex(self.store, name, context, key.fingerprint())
            if fresh:
                return index
            self._indexes[name] = index
        return self._indexes[name]


def _digest_key(system: FRSystem) -> bytes | None:
    """The secret that keys photo digests: derived from the system's keys (a domain-separated
    hash of their arrays, unlike the public fingerprint), None without keys."""
    if not system.protections_:
        return None
    digest = hashlib.sha256(_DIGEST_DOMAIN)
    for name in sorted(system.protections_):
        key = system.protections_[name].key_
        for array in sorted(key):
            digest.update(f"{name}.{array}\n".encode())
            digest.update(np.ascontiguousarray(key[array]).tobytes())
    return digest.digest()
