"""Search over one backbone's plain or BioHash templates, kept in memory beside the store.

Exact search is one matrix-vector product (float32 BLAS sgemv, on OpenBLAS's threads) over the
unit templates kept as one contiguous float32 matrix (100,000 x 128 is 51 MB and a few
milliseconds), with nothing copied per query but the N cosines; above `ANN_THRESHOLD`
templates, or when asked, an HNSW graph (usearch, cosine metric) finds the candidates instead,
in well under a millisecond, at a small loss of recall. Either way the index only proposes
candidates by cosine: the gallery scores them with the system's own predictor, so the decision
is the system's.
"""

from __future__ import annotations

import numpy as np

from facebone.predictors.base import l2_normalize

ANN_THRESHOLD = 20_000
# HNSW's search breadth: candidates a query keeps while walking the graph (usearch's
# `expansion_search`); 64 keeps recall@10 near 1 on face embeddings at 100,000 templates.
EXPANSION_SEARCH = 64


class TemplateIndex:
    """Face ids, their subjects and unit templates of one backbone; `search` returns the
    candidates nearest a probe by cosine. `approximate`: None decides by size
    (`ANN_THRESHOLD`), True or False forces it."""

    def __init__(
        self,
        ids: np.ndarray,
        subjects: list[str],
        templates: np.ndarray,
        approximate: bool | None = None,
    ) -> None:
        self.dim = templates.shape[1]
        self.approximate = approximate
        self._ids = np.asarray(ids, dtype=np.int64)
        self._subjects = list(subjects)
        self._templates = np.asarray(templates, dtype=np.float32)
        self._units = l2_normalize(self._templates).astype(np.float32)
        self._reindex()
        self._ann = None
        if self._wants_ann(len(self._ids)):
            self._build_ann()

    def _reindex(self) -> None:
        self._row = {int(face): row for row, face in enumerate(self._ids)}
        self._rows_of: dict[str, list[int]] = {}
        for row, subject in enumerate(self._subjects):
            self._rows_of.setdefault(subject, []).append(row)

    def __len__(self) -> int:
        return len(self._ids)

    def _wants_ann(self, count: int) -> bool:
        return count >= ANN_THRESHOLD if self.approximate is None else self.approximate

    def _build_ann(self) -> None:
        from usearch.index import Index

        self._ann = Index(ndim=self.dim, metric="cos", dtype="f32")
        self._ann.expansion_search = EXPANSION_SEARCH
        if len(self._ids):
            self._ann.add(self._ids, self._units)

    def add(self, ids: np.ndarray, subjects: list[str], templates: np.ndarray) -> None:
        """Index newly committed faces."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        templates = np.asarray(templates, dtype=np.float32)
        units = l2_normalize(templates).astype(np.float32)
        start = len(self._ids)
        self._row.update({int(face): start + i for i, face in enumerate(ids)})
        for i, subject in enumerate(subjects):
            self._rows_of.setdefault(subject, []).append(start + i)
        self._ids = np.concatenate([self._ids, ids])
        self._subjects.extend(subjects)
        self._templates = np.concatenate([self._templates, templates])
        self._units = np.concatenate([self._units, units])
        if self._ann is not None:
            self._ann.add(ids, units)
        elif self._wants_ann(len(self._ids)):
            self._build_ann()

    def remove(self, ids: list[int]) -> None:
        """Forget deleted faces (their templates are dropped from memory too)."""
        gone = {int(face) for face in ids if int(face) in self._row}
        if not gone:
            return
        keep = np.array([int(face) not in gone for face in self._ids])
        self._ids = self._ids[keep]
        self._subjects = [s for s, k in zip(self._subjects, keep, strict=True) if k]
        self._templates = self._templates[keep]
        self._units = self._units[keep]
        self._reindex()
        if self._ann is not None:
            for face in gone:
                self._ann.remove(face)

    def search(self, probe: np.ndarray, k: int) -> np.ndarray:
        """Rows of the (up to) `k` templates nearest `probe` by cosine, best first."""
        if not len(self._ids):
            return np.empty(0, dtype=np.int64)
        k = min(k, len(self._ids))
        unit = l2_normalize(np.asarray(probe)[None])[0].astype(np.float32)
        if self._ann is not None:
            matches = self._ann.search(unit, k)
            return np.array([self._row[int(face)] for face in matches.keys], dtype=np.int64)
        cosines = self._units @ unit
        top = np.argpartition(-cosines, k - 1)[:k]
        return top[np.argsort(-cosines[top], kind="stable")]

    def rows_of(self, subjects: set[str]) -> np.ndarray:
        """Rows of every template of `subjects` (a dictionary look-up: the ensemble scores
        a subject one backbone did not propose, in a gallery of 100,000)."""
        return np.array(
            sorted(row for s in subjects for row in self._rows_of.get(s, ())), dtype=np.int64
        )

    def subjects(self) -> list[str]:
        """Every subject with a template here, sorted."""
        return sorted(self._rows_of)

    @property
    def subject_count(self) -> int:
        return len(self._rows_of)

    def template_of(self, face: int) -> np.ndarray:
        return self._templates[self._row[int(face)]]

    def subjects_at(self, rows: np.ndarray) -> list[str]:
        return [self._subjects[row] for row in rows]

    def templates_at(self, rows: np.ndarray) -> np.ndarray:
        """The stored templates (not unit-scaled: the predictor gets what the system made)."""
        return self._templates[rows]

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        return self._ids[rows]
