"""CKKS-encrypted templates of one backbone in a gallery store: column-packed blocks.

Per backbone the store holds blocks of SLOTS (4096) template slots; ciphertext j of a block
encrypts coordinate j of the templates in its slots (`protection/ckks.py`), and a table maps
each face to its (block, slot).
- Enrolment needs only the public context: the new unit templates go into free slots (those of
  deleted faces first, then the last block's, then a new block) by adding to each of the
  block's ciphertexts a fresh encryption that holds them at those slots and zeros elsewhere.
  It costs D encryptions per block touched (about 1 s for 128-D on one core) whatever the
  number of faces, so enrolling many faces at once is what makes it fast. Each addition adds a
  fresh encryption's noise (about 5e-6 per score) to the block's scores; thousands of
  additions to one block stay below 1e-3, far below what the calibrated threshold resolves.
- Search: per block `sum_j ct_j * p_j` with the plain unit probe (`EncryptedTemplates.match`),
  one ciphertext of 4096 cosines, decrypted by the key holder; the gallery calibrates them.
- Many probes against one subject (`Gallery.matches`, an erasure's search of the training
  photos): the key holder decrypts the subject's templates (D decryptions per block, as a
  deletion does) and matches them in the clear, instead of one packed match per probe (D
  products each: 30 ms per probe for 128-D, a minute for a thousand training photos).
- Deletion needs the secret key: the key holder decrypts the block, zeroes the freed slots and
  encrypts it afresh (`CKKSKey.zero_slots`), written in the transaction that deletes the rows.
  Adding an encryption of the negated template would also zero the slot, but only up to the
  CKKS noise, and the template would stay recoverable from the two ciphertexts of a backup.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import tenseal as ts

from facebone.errors import FaceBoneError
from facebone.gallery.store import GalleryStore
from facebone.protection.ckks import (
    SLOTS,
    CKKSKey,
    EncryptedTemplates,
    ciphertexts_from,
    encrypt_columns,
)


class EncryptedIndex:
    """The encrypted templates of `backbone` as the server holds them: the blocks' ciphertexts
    (parsed under the public `context`) and the slot of every face."""

    def __init__(self, store: GalleryStore, backbone: str, context: ts.Context, fingerprint: str):
        self.backbone = backbone
        self.dim = store.meta.backbones[backbone]
        self.context = context
        self.fingerprint = fingerprint
        stored = store.blocks(backbone)
        if sorted(stored) != list(range(len(stored))):
            raise FaceBoneError(f"the gallery's encrypted {backbone} blocks are not contiguous")
        self._stored = stored
        self._parsed: dict[int, list[ts.CKKSVector]] = {}
        rows = store.slots(backbone)
        self.ids = np.array([row[0] for row in rows], dtype=np.int64)
        self.subjects = [row[1] for row in rows]
        self.positions = np.array([row[2] * SLOTS + row[3] for row in rows], dtype=np.int64)
        if np.any(self.positions >= len(stored) * SLOTS):
            raise FaceBoneError(f"the gallery's {backbone} slots point past its blocks")

    def __len__(self) -> int:
        return len(self.ids)

    def block(self, number: int) -> list[ts.CKKSVector]:
        """Block `number`'s ciphertexts, parsed on first use (an enrolment touches one)."""
        if number not in self._parsed:
            self._parsed[number] = ciphertexts_from(self.context, self._stored[number])
        return self._parsed[number]

    def parse_all(self) -> None:
        """Parse every block now (a search parses them all)."""
        for number in range(len(self._stored)):
            self.block(number)

    def enrol(self, store: GalleryStore, faces: list[int], units: np.ndarray) -> None:
        """Write the unit templates `units` (n, D) of `faces` into free slots, inside the
        caller's transaction. The index itself is stale afterwards: reload it once committed."""
        used = set(self.positions.tolist())
        free = (p for p in range(len(self._stored) * SLOTS + len(faces)) if p not in used)
        chosen = np.array([next(free) for _ in faces], dtype=np.int64)
        for block in np.unique(chosen // SLOTS):
            rows = np.flatnonzero(chosen // SLOTS == block)
            fresh = encrypt_columns(self.context, units[rows], chosen[rows] % SLOTS)
            if block < len(self._stored):
                fresh = [old + new for old, new in zip(self.block(block), fresh, strict=True)]
            store.put_block(self.backbone, int(block), [c.serialize() for c in fresh])
            for row in rows:
                store.put_slot(faces[row], self.backbone, int(block), int(chosen[row] % SLOTS))

    def erase(self, store: GalleryStore, key: CKKSKey, faces: list[int]) -> None:
        """Zero the slots of `faces` (the key holder's part of a deletion), inside the
        caller's transaction; reload the index once committed."""
        positions = self.positions[np.isin(self.ids, faces)]
        for block, slots in _by_block(positions).items():
            zeroed = key.zero_slots(self.block(block), slots)
            store.put_block(self.backbone, block, [c.serialize() for c in zeroed])

    def templates(self, key: CKKSKey, rows: np.ndarray) -> np.ndarray:
        """The unit templates at `rows`, (len(rows), D), decrypted by the key holder `key`
        (D decryptions per block that holds them; the rest of the block is dropped)."""
        positions = self.positions[rows]
        found = np.empty((len(positions), self.dim))
        for block in np.unique(positions // SLOTS):
            at = np.flatnonzero(positions // SLOTS == block)
            found[at] = key.decrypt_slots(self.block(int(block)), positions[at] % SLOTS)
        return found

    def cosines(
        self, key: CKKSKey, probe: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """The cosine of `probe` with the templates at `rows` (all when None): the blocks
        that hold them matched under encryption, decrypted by `key`."""
        positions = self.positions if rows is None else self.positions[rows]
        if not len(positions):
            return np.empty(0)
        needed = sorted({int(p) // SLOTS for p in positions})
        packed = EncryptedTemplates(
            self.context,
            [self.block(b) for b in needed],
            len(needed) * SLOTS,
            self.dim,
            self.fingerprint,
        )
        scores = key.decrypt_scores(packed.match(probe))
        at = {b: i for i, b in enumerate(needed)}
        return scores[[at[int(p) // SLOTS] * SLOTS + int(p) % SLOTS for p in positions]]


def _by_block(positions: np.ndarray) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for p in positions:
        grouped[int(p) // SLOTS].append(int(p) % SLOTS)
    return dict(grouped)
