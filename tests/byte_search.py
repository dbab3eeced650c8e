"""Searching raw bytes for float vectors near given ones: what a thief reading a stolen file
could find (the CKKS store, the gallery's SQLite file and its -wal)."""

import numpy as np
from scipy.spatial.distance import cdist


def found_near(data: bytes, references: np.ndarray, radius: float) -> int:
    """How many `references` (R, D) lie within L2 distance `radius` of a window of D
    consecutive float32 or float64 values read from `data` at any byte offset.

    A window that near a reference has every value within `radius` of the reference's range
    and a norm within `radius` of its norm; only windows passing both (found with running
    sums) are compared in full.
    """
    dim = references.shape[1]
    bound = np.abs(references).max() + radius
    norms = np.linalg.norm(references, axis=1)
    found = np.zeros(len(references), dtype=bool)
    for dtype in (np.float32, np.float64):
        size = np.dtype(dtype).itemsize
        for offset in range(size):
            values = np.frombuffer(data, dtype, (len(data) - offset) // size, offset)
            with np.errstate(invalid="ignore", over="ignore"):
                x = values.astype(np.float64)
                usable = np.isfinite(x) & (np.abs(x) <= bound)
            x = np.where(usable, x, 0.0)
            unusable = np.concatenate([[0], np.cumsum(~usable)])
            squares = np.concatenate([[0.0], np.cumsum(x * x)])
            norm = np.sqrt(np.maximum(squares[dim:] - squares[:-dim], 0.0))
            starts = np.flatnonzero(
                (unusable[dim:] == unusable[:-dim])
                & (norm > norms.min() - radius)
                & (norm < norms.max() + radius)
            )
            for chunk in np.array_split(starts, max(1, len(starts) // 10_000)):
                if chunk.size:
                    windows = x[chunk[:, None] + np.arange(dim)]
                    found |= (cdist(windows, references) < radius).any(axis=0)
    return int(found.sum())
