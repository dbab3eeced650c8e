"""Any ONNX face model (InsightFace, FaceX-Zoo or OpenCV Zoo exports) run by onnxruntime.

Configuration comes from keyword arguments or a JSON file beside the model
(`model.onnx.json`): `input_size`, `mean`, `std` (pixel = (x - mean) / std) and `color`
("rgb" or "bgr"). The defaults are InsightFace's: 112 px, RGB, (x - 127.5) / 127.5.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebone.assets import file_sha256
from facebone.backbones.base import Backbone, batches
from facebone.backbones.registry import register_backbone
from facebone.data.text_files import parse_json
from facebone.errors import FaceBoneError


def load_dynamic_batch_model(path: Path) -> bytes:
    """The model with a free batch dimension and weights no longer listed as graph inputs.

    Some exports (SFace among them) declare batch size 1 and list every weight as an input,
    which blocks batching and makes onnxruntime warn once per weight.
    """
    import onnx  # here, not at the top: every CLI start loads this module, few use ONNX

    try:
        model = onnx.load(str(path))
    except Exception as error:
        raise FaceBoneError(f"{path}: not a readable ONNX model ({error})") from None
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise FaceBoneError(f"{path}: expected one image input, found {len(inputs)}")
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    return model.SerializeToString()


class OnnxBackbone(Backbone):
    """A face model in ONNX: NCHW float input, one (N, D) embedding output."""

    def __init__(
        self,
        weights: str | Path,
        name: str | None = None,
        input_size: int | None = None,
        mean: float = 127.5,
        std: float = 127.5,
        color: str = "rgb",
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        path = Path(weights)
        if not path.is_file():
            raise FaceBoneError(f"ONNX model {path} does not exist")
        config = _sidecar_config(path)
        self.name = name or config.get("name", f"onnx:{path.name}")
        self.mean = float(config.get("mean", mean))
        self.std = float(config.get("std", std))
        self.color = str(config.get("color", color)).lower()
        if self.color not in {"rgb", "bgr"}:
            raise FaceBoneError(f"{path}: color must be 'rgb' or 'bgr', not {self.color!r}")
        self.batch_size = batch_size
        self.weights_id = file_sha256(path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle onnxruntime threads otherwise spin for a while after each run, stealing the
        # cores that the next stage (or another backbone) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                load_dynamic_batch_model(path), options, providers=["CPUExecutionProvider"]
            )
        except FaceBoneError:
            raise
        except Exception as error:
            raise FaceBoneError(f"{path}: onnxruntime cannot run this model ({error})") from None
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        declared = model_input.shape[2] if len(model_input.shape) == 4 else None
        size = config.get("input_size", input_size or declared)
        if not isinstance(size, int):
            raise FaceBoneError(f"{path}: give input_size, the model does not declare it")
        self.input_size = size
        probe = np.zeros((1, 3, size, size), dtype=np.float32)
        self.embedding_dim = int(self._session.run(None, {self._input_name: probe})[0].shape[-1])

    @property
    def cache_key(self) -> str:
        """The weights' key plus the input settings: the same file read with another size,
        colour order or normalisation gives other embeddings."""
        settings = json.dumps([self.input_size, self.color, self.mean, self.std])
        return f"{super().cache_key}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"

    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        outputs = [np.empty((0, self.embedding_dim), dtype=np.float32)]
        for batch in batches(faces, self.batch_size):
            array = np.stack(batch).astype(np.float32)
            if self.color == "bgr":
                array = array[..., ::-1]
            array = ((array - self.mean) / self.std).transpose(0, 3, 1, 2)
            result = self._session.run(None, {self._input_name: np.ascontiguousarray(array)})
            outputs.append(result[0].reshape(len(batch), -1).astype(np.float32))
        return np.concatenate(outputs)


def _sidecar_config(path: Path) -> dict:
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return {}
    try:
        config = parse_json(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"{sidecar}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise FaceBoneError(f"{sidecar}: must hold a JSON object")
    return config


@register_backbone("onnx")
def onnx_backbone(weights: str | None = None, **kwargs) -> OnnxBackbone:
    if not weights:
        raise FaceBoneError("the onnx backbone needs a model file: use onnx:PATH")
    return OnnxBackbone(weights, **kwargs)
