"""Encrypted templates: the enrolled templates under CKKS homomorphic encryption (TenSEAL).

Threat model. The server stores the templates of enrolled people; a thief who copies the store
(or the model folder) must get nothing usable. Here the server stores and matches ciphertexts
only: a template (the L2-normalised embedding) is encrypted under the key holder's public key,
the probe stays plain, and the server computes their cosine `t . p` under encryption. Only the
secret key, in a key file outside the store (`keyfile.py`: written 0600, never overwritten, no
pickle; the key is TenSEAL's own serialisation as bytes), turns the encrypted score into a
number, which the predictor then calibrates as usual. A thief holding the store gets
ciphertexts and the public context; the key file's fingerprint, kept with the store and the
model directory, reveals nothing of the key and refuses a wrong one.

    key = create_protection("ckks", dim_in=128).fit()      # keys from the OS's entropy
    store = key.encrypt(gallery)                           # EncryptedTemplates, (N, 128)
    scores = key.decrypt_scores(store.match(probe))        # (N,) cosines, 1:N search
    scores = key.decrypt_scores(store.match_pairs(probes)) # template i vs probe i
    stolen = store.to_bytes()                              # what the server writes to disk
    key.save_key("ckks.key")                               # keyfile.py; load_key reads it

Packing. A ciphertext holds 4096 numbers (slots). Templates are column-packed: in each block of
up to 4096 templates, ciphertext j holds coordinate j of every template, so the block's scores
against a probe are `sum_j ct_j * p_j` -- D products with a plain number and D - 1 additions,
one ciphertext of scores, no rotation and hence no Galois keys. Matching each template with
its own probe is the same sum with `p_j` the vector of the probes' coordinate j. One pair is a
block of one template: the same code, but D ciphertexts for one template; packing is what makes
it cheap (10,000 x 128-d: 384 ciphertexts, scored in 30 ms on an idle core).

Parameters, and why.
- Polynomial modulus degree 8192: 4096 slots; the 120-bit coefficient modulus below is well
  inside the 218 bits that the HomomorphicEncryption.org standard allows this degree for
  128-bit security.
- Coefficient modulus [60, 60] bits: matching is one ciphertext x plaintext product, after
  which CKKS would usually rescale, spending a second data prime ([60, 40, 60]). Without the
  rescale the score stays on the one 60-bit data prime, at scale Δ²; the second prime is
  SEAL's special prime, used only when keys are made. One data prime halves the ciphertext
  (128 KiB) and the work.
- Scale Δ = 2^28: a cosine of unit vectors, and each partial sum of it, lies in [-1, 1]
  (Cauchy-Schwarz), so at scale Δ² = 2^56 it stays 8x below q/2 ~ 2^59 and never wraps
  around the modulus; the encryption noise over Δ gives errors of about 5e-6 (largest 4e-5
  over 10,000 scores), far below what the calibrated threshold resolves. ([60, 40, 60] at
  2^40 errs by 1e-7 for twice the bytes and seven times the matching time.)
- Public-key encryption: whoever enrols (the server included) encrypts with the public
  context alone; no relinearisation keys travel with it, as no ciphertext is ever multiplied by
  another.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts

from facebone.errors import FaceBoneError
from facebone.predictors.base import l2_normalize
from facebone.protection.base import TemplateProtection, register_protection

POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 60)
SCALE = 2.0**28
SLOTS = POLY_MODULUS_DEGREE // 2
STORE_FORMAT = 1


def _load_context(data: bytes, private: bool) -> ts.Context:
    """A TenSEAL context of FaceBone's parameters from its bytes; ValueError when it is
    damaged, made with other parameters, or lacks (or holds) the secret key."""
    context = ts.context_from(data, n_threads=1)  # raises ValueError on damaged bytes
    seal = context.seal_context().data
    parms = seal.key_context_data().parms()
    if (
        parms.scheme() != ts.SCHEME_TYPE.CKKS.value
        or parms.poly_modulus_degree() != POLY_MODULUS_DEGREE
        or seal.key_context_data().total_coeff_modulus_bit_count() != sum(COEFF_MOD_BIT_SIZES)
        or seal.first_context_data().total_coeff_modulus_bit_count() != COEFF_MOD_BIT_SIZES[0]
        or context.global_scale != SCALE
        or context.auto_rescale
    ):
        raise ValueError("the CKKS context was made with other parameters")
    if context.has_secret_key() != private:
        raise ValueError(f"the CKKS context {'lacks' if private else 'holds'} the secret key")
    return context


def _public_bytes(context: ts.Context) -> bytes:
    """A public context's bytes, without the relinearisation keys no matching uses."""
    return context.serialize(save_galois_keys=False, save_relin_keys=False)


def _unit_rows(X: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """`X` checked to have `shape` and finite values, each row scaled to unit length."""
    X = np.asarray(X)
    if X.shape != shape or not np.issubdtype(X.dtype, np.number):
        raise FaceBoneError(f"{what} must be numbers of shape {shape}, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise FaceBoneError(f"{what} must be finite")
    return l2_normalize(X)


@register_protection("ckks")
class CKKSKey(TemplateProtection):
    """The key holder's side: the secret CKKS context of one backbone's templates.

    `transform` gives the unit vectors that are encrypted (what decryption gives back; a probe
    as the server sees it): CKKS hides templates by encrypting them, not by changing them.
    """

    encrypts = True

    def _check_dims(self) -> None:
        super()._check_dims()
        if self.output_dim != self.dim_in:
            raise FaceBoneError("CKKS encrypts whole templates; dim_out must be None")
        if self.seed is not None:
            raise FaceBoneError(
                "CKKS keys come from SEAL's generator seeded by the operating system; "
                "seed must be None"
            )

    def _draw_key(self, rng: np.random.Generator, X: np.ndarray | None) -> dict[str, np.ndarray]:
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            POLY_MODULUS_DEGREE,
            coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES),
            n_threads=1,
        )
        context.global_scale = SCALE
        context.auto_rescale = False
        data = context.serialize(
            save_secret_key=True, save_galois_keys=False, save_relin_keys=False
        )
        return {"context": np.frombuffer(data, dtype=np.uint8).copy(), "dim": np.array(self.dim_in)}

    @classmethod
    def _params_of_key(cls, key: dict[str, np.ndarray]) -> dict[str, Any]:
        context, dim = key["context"], key["dim"]
        if (
            context.ndim != 1
            or context.dtype != np.uint8
            or dim.shape != ()
            or dim.dtype.kind != "i"
        ):
            raise ValueError("a CKKS key is the context's bytes and the template width")
        _load_context(context.tobytes(), private=True)
        return {"dim_in": int(dim)}

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return l2_normalize(X)

    def _contexts(self) -> tuple[ts.Context, ts.Context]:
        """The secret context and the public one made from it, parsed once per key."""
        if not hasattr(self, "key_"):
            self.fit()
        cached = getattr(self, "_loaded", None)
        if cached is None or cached[0] is not self.key_["context"]:
            secret = _load_context(self.key_["context"].tobytes(), private=True)
            public = secret.copy()
            public.make_context_public()
            self._loaded = (self.key_["context"], secret, public)
        return self._loaded[1], self._loaded[2]

    def public_context(self) -> bytes:
        """The server's context: the parameters and the public key, no secret key."""
        return _public_bytes(self._contexts()[1])

    def encrypt(self, templates: Any) -> EncryptedTemplates:
        """The server's store of `templates` (N, dim_in), encrypted under this key."""
        return EncryptedTemplates.encrypt(
            self._contexts()[1], self.fingerprint(), self._checked(templates)
        )

    def decrypt_scores(self, scores: EncryptedScores) -> np.ndarray:
        """The scores as numbers (float64); scores made under another key are refused."""
        if scores.fingerprint != self.fingerprint():
            raise FaceBoneError(
                "these scores were encrypted under another CKKS key (its fingerprint differs)"
            )
        secret = self._contexts()[0].secret_key()
        return np.concatenate([np.asarray(v.decrypt(secret)) for v in scores.vectors])

    def zero_slots(self, ciphertexts: list[ts.CKKSVector], slots: Any) -> list[ts.CKKSVector]:
        """A block's ciphertexts with `slots` set to zero: decrypted, zeroed and encrypted
        afresh, so nothing of the values that were there remains (the key holder's part of a
        deletion; see `facebone.gallery.encrypted`)."""
        columns = self._decrypt_columns(ciphertexts)
        columns[:, np.asarray(slots, dtype=np.int64)] = 0.0
        return [ts.ckks_vector(self._contexts()[1], column.tolist()) for column in columns]

    def decrypt_slots(self, ciphertexts: list[ts.CKKSVector], slots: Any) -> np.ndarray:
        """The templates at `slots` of a block's ciphertexts, (len(slots), D): D decryptions
        whatever the number of slots, where matching n probes under encryption costs n times
        D products (the key holder's bulk 1:1, `Gallery.matches`)."""
        return self._decrypt_columns(ciphertexts)[:, np.asarray(slots, dtype=np.int64)].T

    def _decrypt_columns(self, ciphertexts: list[ts.CKKSVector]) -> np.ndarray:
        secret = self._contexts()[0].secret_key()
        return np.array([v.decrypt(secret) for v in ciphertexts])

    def encrypted_cosines(self, templates: Any, probes: Any) -> np.ndarray:
        """The cosine of each template with its probe, as a system computes it: this key
        encrypts the templates, the server matches them with the plain probes, this key
        decrypts the scores."""
        return self.decrypt_scores(self.encrypt(templates).match_pairs(probes))


def encrypt_columns(context: ts.Context, units: np.ndarray, slots: Any) -> list[ts.CKKSVector]:
    """The D ciphertexts of one full block (SLOTS slots) that hold row i of `units` (n, D) at
    slot `slots[i]` and zeros elsewhere: added to a block's ciphertexts, they enrol the rows
    into free slots with the public `context` alone."""
    columns = np.zeros((units.shape[1], SLOTS))
    columns[:, np.asarray(slots, dtype=np.int64)] = units.T
    return [ts.ckks_vector(context, column.tolist()) for column in columns]


def ciphertexts_from(context: ts.Context, data: list[bytes]) -> list[ts.CKKSVector]:
    """Ciphertexts from TenSEAL's serialisations, under `context`; damaged bytes are one
    FaceBoneError sentence."""
    try:
        return [ts.ckks_vector_from(context, item) for item in data]
    except (ValueError, TypeError) as error:
        raise FaceBoneError(f"an encrypted template block is damaged ({error})") from None


@dataclass(frozen=True)
class EncryptedScores:
    """Scores under encryption: one ciphertext per block of templates, and the fingerprint of
    the key they were encrypted under."""

    vectors: list[ts.CKKSVector]
    fingerprint: str


class EncryptedTemplates:
    """The server's side: column-packed encrypted templates and the public context.

    `blocks[b][j]` encrypts coordinate j of templates `b * 4096` up to `(b + 1) * 4096`;
    `fingerprint` names the key they were encrypted under.
    """

    def __init__(
        self,
        context: ts.Context,
        blocks: list[list[ts.CKKSVector]],
        count: int,
        dim: int,
        fingerprint: str,
    ) -> None:
        self.context = context
        self.blocks = blocks
        self.count = count
        self.dim = dim
        self.fingerprint = fingerprint

    @classmethod
    def encrypt(
        cls, context: ts.Context, fingerprint: str, templates: np.ndarray
    ) -> EncryptedTemplates:
        """Encrypt `templates` (N, D), each scaled to unit length, with the public `context`
        of the key whose fingerprint is `fingerprint`."""
        templates = np.asarray(templates)
        if templates.ndim != 2 or templates.size == 0:
            raise FaceBoneError(
                f"templates must be a non-empty (N, D) array, got {templates.shape}"
            )
        count, dim = templates.shape
        units = _unit_rows(templates, (count, dim), "templates")
        blocks = [
            [ts.ckks_vector(context, units[start : start + SLOTS, j].tolist()) for j in range(dim)]
            for start in range(0, count, SLOTS)
        ]
        return cls(context, blocks, count, dim, fingerprint)

    def match(self, probe: Any) -> EncryptedScores:
        """Encrypted cosines of every template with one plain `probe` (dim,): a 1:N search."""
        p = _unit_rows(np.asarray(probe)[None], (1, self.dim), "the probe")[0]
        return self._weighted_sums(lambda rows, j: float(p[j]))

    def match_pairs(self, probes: Any) -> EncryptedScores:
        """Encrypted cosines of template i with plain probe i, for probes (count, dim)."""
        p = _unit_rows(probes, (self.count, self.dim), "probes")
        return self._weighted_sums(lambda rows, j: p[rows, j].tolist())

    def _weighted_sums(self, weight: Callable[[slice, int], Any]) -> EncryptedScores:
        """Per block, `sum_j ct_j * weight(rows, j)`: never rescaled (see the module docstring)."""
        sums = []
        for b, block in enumerate(self.blocks):
            rows = slice(b * SLOTS, min((b + 1) * SLOTS, self.count))
            total = block[0] * weight(rows, 0)
            for j in range(1, self.dim):
                total += block[j] * weight(rows, j)
            sums.append(total)
        return EncryptedScores(sums, self.fingerprint)

    def to_bytes(self) -> bytes:
        """The store as the server writes it to disk, and as a thief would copy it: an npz of
        TenSEAL's serialisations (no pickle)."""
        ciphertexts = [v.serialize() for block in self.blocks for v in block]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format=np.array(STORE_FORMAT),
            count=np.array(self.count),
            dim=np.array(self.dim),
            fingerprint=np.array(self.fingerprint),
            context=np.frombuffer(_public_bytes(self.context), dtype=np.uint8),
            sizes=np.array([len(c) for c in ciphertexts], dtype=np.int64),
            ciphertexts=np.frombuffer(b"".join(ciphertexts), dtype=np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedTemplates:
        """The store `to_bytes` wrote; damaged bytes are one clear error."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            if arrays["format"].item() != STORE_FORMAT:
                raise ValueError(f"format {arrays['format'].item()}, not {STORE_FORMAT}")
            count, dim = int(arrays["count"]), int(arrays["dim"])
            context = _load_context(arrays["context"].tobytes(), private=False)
            sizes = arrays["sizes"]
            ends = np.cumsum(sizes)
            lengths = [min(SLOTS, count - start) for start in range(0, count, SLOTS)]
            if len(sizes) != dim * len(lengths) or ends[-1] != arrays["ciphertexts"].size:
                raise ValueError("the ciphertexts do not fill count x dim")
            raw = arrays["ciphertexts"].tobytes()
            vectors = [
                ts.ckks_vector_from(context, raw[e - n : e])
                for n, e in zip(sizes, ends, strict=True)
            ]
            blocks = [vectors[b * dim : (b + 1) * dim] for b in range(len(lengths))]
            if any(v.size() != n for block, n in zip(blocks, lengths, strict=True) for v in block):
                raise ValueError("a ciphertext holds the wrong number of templates")
        except (KeyError, ValueError, TypeError, IndexError, OSError, zipfile.BadZipFile) as error:
            raise FaceBoneError(f"the encrypted store is damaged ({error})") from None
        return cls(context, blocks, count, dim, str(arrays["fingerprint"]))
