"""A person's photo on its way to the model: checked, decoded, its faces found.

The verification page shows every face found so the person can pick one; the system is then
asked about that face by its number (`FRSystem.verify(faces=...)`), numbered as the detector
orders them here: the face covering the centre first, then by size.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from facebone.backbones import Backbone
from facebone.errors import NoFaceError
from facebone.faces.detect import Face, FaceDetector
from facebone.faces.image import decode_image
from facebone.uploads import check_upload


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    image: np.ndarray
    faces: list[Face]


def read_photo(data: bytes, name: str, detector: FaceDetector, convert_color: bool) -> Photo:
    """Check and decode an uploaded photo and find its faces; no face is an error."""
    check_upload(data, name)
    image = decode_image(data, name, convert_color)
    faces = detector.detect(image)
    if not faces:
        raise NoFaceError(f"{name}: no face found in the image")
    return Photo(name, data, image, faces)


def face_thumbnail(photo: Photo, face: Face, size: int = 96) -> np.ndarray:
    """The face's box, for the person to recognise which face is which."""
    x, y, w, h = (int(v) for v in face.box)
    height, width = photo.image.shape[:2]
    crop = photo.image[max(0, y) : min(height, y + h), max(0, x) : min(width, x + w)]
    thumbnail = Image.fromarray(crop)
    thumbnail.thumbnail((size, size))
    return np.asarray(thumbnail)


def aligned_faces(photo: Photo, index: int, backbones: list[Backbone]) -> dict[str, np.ndarray]:
    """{backbone name: the aligned crop it embeds} of face `index` (0-based) of the photo."""
    return {
        backbone.name: backbone.align(photo.image, photo.faces[index]) for backbone in backbones
    }
