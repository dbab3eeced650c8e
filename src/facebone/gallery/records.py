"""Typed records of a gallery: what it holds and what it answers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError

GALLERY_FORMAT = 1
PROTECTIONS = (None, "biohash", "ckks")


@dataclass(frozen=True)
class GalleryMeta:
    """What a gallery was made for: templates of `backbones` ({name: template width}) under
    `protection`, with the key of fingerprint `key_fingerprint`, for the model whose config.json
    has SHA-256 `model_sha256`. A gallery opened with another model or key is refused."""

    protection: str | None
    backbones: dict[str, int]
    key_fingerprint: str | None
    model_sha256: str
    created: float
    format: int = GALLERY_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GalleryMeta:
        """The meta `to_json` wrote; anything else is one FaceBoneError sentence."""
        try:
            data = parse_json(text)
            meta = cls(
                protection=data["protection"],
                backbones={str(k): int(v) for k, v in data["backbones"].items()},
                key_fingerprint=data["key_fingerprint"],
                model_sha256=str(data["model_sha256"]),
                created=float(data["created"]),
                format=int(data["format"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise FaceBoneError(f"the gallery's metadata is damaged ({error})") from None
        if meta.format != GALLERY_FORMAT:
            raise FaceBoneError(
                f"the gallery has format {meta.format}; this FaceBone reads format {GALLERY_FORMAT}"
            )
        if meta.protection not in PROTECTIONS or not meta.backbones:
            raise FaceBoneError("the gallery's metadata is damaged (protection or backbones)")
        return meta


@dataclass(frozen=True)
class Subject:
    """An enrolled person as the gallery knows them: an opaque id, never a name."""

    id: str
    faces: int
    created: float


@dataclass(frozen=True)
class Identification:
    """A 1:N answer: the enrolled subject the probe matches, or None. Never a score: scores
    of a gallery tell a client who is enrolled and how close they come."""

    subject: str | None
    backbone: str
