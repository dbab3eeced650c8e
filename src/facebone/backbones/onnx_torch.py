"""A differentiable PyTorch copy of an ONNX face model, for attacks that need gradients.

Model inversion by optimisation descends on an image through the attacked backbone, which
OpenCV's and onnxruntime's engines cannot differentiate. `onnx2torch` would convert the graph,
but it imports torchvision, which does not load with the CPU torch wheel FaceBone pins; the
face models need only a handful of operators, interpreted here node by node:
Conv, BatchNormalization, PRelu, Relu, Add, Sub, Mul, Dropout, Flatten and Gemm (SFace uses all
but Add and Relu, which IResNet-style exports add). Weights are buffers: gradients flow to the
input image only.

    copy = differentiable_backbone("sface")      # also onnx:PATH, iresnet50:WEIGHTS
    embeddings = copy(pixels)                    # (N, 3, H, W) RGB 0..255 -> (N, D)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebone.errors import FaceBoneError


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x: torch.Tensor, weight, bias=None, *, attrs: dict) -> torch.Tensor:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise FaceBoneError("ONNX Conv with auto_pad is not supported; export with explicit pads")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    half = len(pads) // 2
    if pads[:half] == pads[half:]:
        padding = pads[:half]
    else:  # asymmetric: pad explicitly (F.pad lists the last dimension first)
        x = F.pad(x, [p for i in reversed(range(half)) for p in (pads[i], pads[i + half])])
        padding = [0] * half
    return F.conv2d(
        x,
        weight,
        bias,
        stride=list(attrs.get("strides", [1, 1])),
        padding=padding,
        dilation=list(attrs.get("dilations", [1, 1])),
        groups=int(attrs.get("group", 1)),
    )


def _batch_norm(x, scale, bias, mean, var, *, attrs: dict) -> torch.Tensor:
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, float(attrs.get("epsilon", 1e-5)))


def _prelu(x, slope, *, attrs: dict) -> torch.Tensor:
    return torch.where(x >= 0, x, x * slope)


def _flatten(x, *, attrs: dict) -> torch.Tensor:
    axis = int(attrs.get("axis", 1))
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _gemm(a, b, c=None, *, attrs: dict) -> torch.Tensor:
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    out = float(attrs.get("alpha", 1.0)) * (a @ b)
    return out if c is None else out + float(attrs.get("beta", 1.0)) * c


OPERATORS: dict[str, Callable[..., torch.Tensor]] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "PRelu": _prelu,
    "Relu": lambda x, *, attrs: F.relu(x),
    "Add": lambda a, b, *, attrs: a + b,
    "Sub": lambda a, b, *, attrs: a - b,
    "Mul": lambda a, b, *, attrs: a * b,
    "Dropout": lambda x, *rest, attrs: x,  # inference: the identity
    "Flatten": _flatten,
    "Gemm": _gemm,
}


class OnnxTorch(nn.Module):
    """The graph of an ONNX model file run by PyTorch operators, in the file's node order
    (ONNX stores nodes topologically sorted). Input: the model's own input tensor."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper

        path = Path(path)
        try:
            model = onnx.load(str(path))
        except Exception as error:
            raise FaceBoneError(f"{path}: not a readable ONNX model ({error})") from None
        graph = model.graph
        unknown = sorted({n.op_type for n in graph.node} - set(OPERATORS))
        if unknown:
            raise FaceBoneError(
                f"{path}: operators {', '.join(unknown)} are not supported by the torch copy "
                f"(supported: {', '.join(OPERATORS)})"
            )
        self._buffer_of: dict[str, str] = {}
        for index, tensor in enumerate(graph.initializer):
            array = numpy_helper.to_array(tensor)
            buffer = f"w{index}"
            self.register_buffer(buffer, torch.from_numpy(array.astype(np.float32, copy=True)))
            self._buffer_of[tensor.name] = buffer
        inputs = [v.name for v in graph.input if v.name not in self._buffer_of]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise FaceBoneError(f"{path}: expected one input and one output")
        self._input = inputs[0]
        self._output = graph.output[0].name
        self._nodes = [(n.op_type, list(n.input), n.output[0], _attributes(n)) for n in graph.node]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self._input: x}
        for op, inputs, output, attrs in self._nodes:
            args = [
                getattr(self, self._buffer_of[name]) if name in self._buffer_of else values[name]
                for name in inputs
                if name  # an empty name is an omitted optional input
            ]
            values[output] = OPERATORS[op](*args, attrs=attrs)
        return values[self._output]


class DifferentiableBackbone(nn.Module):
    """A backbone's network with its pixel normalisation: (N, 3, H, W) RGB pixels in 0..255
    -> (N, D) embeddings, the same numbers the backbone's `embed` gives for uint8 crops."""

    def __init__(
        self, network: nn.Module, mean: float, std: float, bgr: bool, input_size: int
    ) -> None:
        super().__init__()
        self.network = network.eval()
        self.mean, self.std, self.bgr, self.input_size = mean, std, bgr, input_size
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-1] != self.input_size:
            pixels = F.interpolate(
                pixels, size=(self.input_size, self.input_size), mode="bilinear", antialias=True
            )
        if self.bgr:
            pixels = pixels.flip(1)
        return self.network((pixels - self.mean) / self.std).flatten(1)


def differentiable_backbone(spec: str) -> DifferentiableBackbone:
    """The torch copy of backbone `spec`: `sface`, `onnx:PATH` (ONNX files through
    `OnnxTorch`) or `iresnet*:WEIGHTS` (already torch). dlib's network has no such copy."""
    from facebone.backbones import create_backbone

    name = spec.partition(":")[0]
    if name == "sface":
        from facebone.assets import sface_path

        return DifferentiableBackbone(OnnxTorch(sface_path()), 0.0, 1.0, False, 112)
    if name == "onnx":
        backbone = create_backbone(spec)
        network = OnnxTorch(spec.partition(":")[2])
        return DifferentiableBackbone(
            network, backbone.mean, backbone.std, backbone.color == "bgr", backbone.input_size
        )
    if name.startswith("iresnet"):
        backbone = create_backbone(spec)
        return DifferentiableBackbone(backbone.model, 127.5, 127.5, False, backbone.input_size)
    raise FaceBoneError(
        f"backbone {spec!r} has no differentiable copy; use sface, onnx:PATH or iresnet*"
    )
