"""Face detection with YuNet (OpenCV Zoo), which also gives the five landmarks for alignment."""

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from facebone.assets import yunet_path
from facebone.errors import NoFaceError

log = logging.getLogger(__name__)

# OpenCV 5 warns on every model load that its new engine ignores target settings.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Large photos are searched at this size: YuNet finds faces down to ~10 px, and detection cost
# grows with the pixel count.
DETECT_MAX_SIDE = 640


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, w, h), five landmarks in image pixels, detector score.

    Landmark order (YuNet's, as in the ArcFace template): right eye, left eye, nose tip,
    right mouth corner, left mouth corner, where right/left are the person's own.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    detected: bool = True


class FaceDetector:
    """YuNet detector, created once and reused for every image."""

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._net = cv2.FaceDetectorYN.create(
            str(yunet_path()), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB image, best candidate first (see `_rank`)."""
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        faces = [
            Face(
                box=(row[0:4] / scale).astype(np.float32),
                landmarks=(row[4:14].reshape(5, 2) / scale).astype(np.float32),
                score=float(row[14]),
            )
            for row in rows
        ]
        return sorted(faces, key=lambda face: _rank(face, width, height), reverse=True)


def _rank(face: Face, width: int, height: int) -> tuple[bool, float]:
    """Prefer a face covering the image centre (dataset crops are centred), then the largest."""
    x, y, w, h = face.box
    covers_centre = x <= width / 2 <= x + w and y <= height / 2 <= y + h
    return covers_centre, float(w * h)


# Median YuNet landmarks over the shared LFW images, as fractions of the image side: where the
# face of an LFW crop is when the detector misses it.
LFW_MEAN_LANDMARKS = np.array(
    [[0.4147, 0.4547], [0.5975, 0.4517], [0.5111, 0.5560], [0.4346, 0.6368], [0.5887, 0.6327]],
    dtype=np.float32,
)


def centred_face(width: int, height: int) -> Face:
    """The face an LFW-style centred crop holds, for dataset images where detection fails."""
    landmarks = LFW_MEAN_LANDMARKS * np.array([width, height], dtype=np.float32)
    side = 0.45 * min(width, height)
    box = np.array([(width - side) / 2, (height - side) / 2, side, side], dtype=np.float32)
    return Face(box=box, landmarks=landmarks, score=0.0, detected=False)


def find_face(
    detector: FaceDetector, image: np.ndarray, name: str, fallback: bool, number: int = 1
) -> Face:
    """The face to verify in `image`: the `number`-th in `detect`'s order (1: the face
    covering the image centre, else the largest).

    Without a face: a user's upload is an error (`fallback=False`); a dataset image of a
    centred-crop dataset such as LFW may fall back to the centred face (`fallback=True`),
    which the caller counts and logs. A user's photo with several faces is logged, naming
    the one used, since the answer depends on it.
    """
    faces = detector.detect(image)
    if number > len(faces) > 0 or number < 1:
        raise NoFaceError(f"{name}: no face number {number}; the photo has {len(faces)}")
    if faces:
        face = faces[number - 1]
        if len(faces) > 1 and not fallback:
            x, y, w, h = (round(float(v)) for v in face.box)
            log.warning(
                "%s: %d faces found; used face %d, the %dx%d px one at x=%d, y=%d "
                "(faces are numbered from the one covering the centre, then by size)",
                name,
                len(faces),
                number,
                w,
                h,
                x,
                y,
            )
        return face
    if not fallback:
        raise NoFaceError(f"{name}: no face found in the image")
    height, width = image.shape[:2]
    log.debug("%s: no face found, using the centred-crop fallback", name)
    return centred_face(width, height)
