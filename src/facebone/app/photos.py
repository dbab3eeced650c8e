"""A person's photo on its way to the model: checked, decoded, its faces found, one chosen.

The verification page shows every face found so the person can pick one; the model is then
given a crop centred on that face, in which the detector's own rule (the face covering the
centre wins) selects it again. The aligned crops shown are computed from exactly the file the
model reads.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facebone.backbones import Backbone
from facebone.errors import NoFaceError
from facebone.faces.detect import Face, FaceDetector, find_face
from facebone.faces.image import decode_image, load_image
from facebone.uploads import check_upload

# The crop given to the model spans this many face widths around the chosen face: enough
# context for the detector to find it again, too little for another face to cover the centre.
CROP_FACE_WIDTHS = 2.2


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


def model_input(photo: Photo, face_index: int) -> bytes:
    """The bytes the model gets: the photo itself when it holds one face, else a PNG crop
    centred on the chosen face."""
    if len(photo.faces) == 1:
        return photo.data
    face = photo.faces[face_index]
    x, y, w, h = face.box
    centre_x, centre_y = x + w / 2, y + h / 2
    half = CROP_FACE_WIDTHS * max(w, h) / 2
    height, width = photo.image.shape[:2]
    left, top = int(max(0, centre_x - half)), int(max(0, centre_y - half))
    right, bottom = int(min(width, centre_x + half)), int(min(height, centre_y + half))
    buffer = io.BytesIO()
    Image.fromarray(photo.image[top:bottom, left:right]).save(buffer, format="PNG")
    return buffer.getvalue()


def aligned_faces(
    path: Path, backbones: list[Backbone], detector: FaceDetector, convert_color: bool
) -> dict[str, np.ndarray]:
    """{backbone name: the aligned crop it embeds} for the face the model finds in `path`."""
    image = load_image(path, convert_color)
    face = find_face(detector, image, path.name, fallback=False)
    return {backbone.name: backbone.align(image, face) for backbone in backbones}
