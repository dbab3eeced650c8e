"""IResNet-18/34/50/100, the ArcFace backbones of InsightFace's arcface_torch, in PyTorch.

Parameter names follow arcface_torch, so its released weights load as they are. Weights are
read without pickle: safetensors, or a `.pth` state dict through `torch.load(weights_only=True)`.
Input: 112x112 RGB, (x - 127.5) / 127.5; output: a 512-d embedding.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from facebone.assets import file_sha256
from facebone.backbones.base import Backbone, batches
from facebone.backbones.registry import register_backbone
from facebone.errors import FaceBoneError

BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """Pre-activation residual block: BN, 3x3 conv, BN, PReLU, 3x3 conv (strided), BN."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    def __init__(self, depth: int, embedding_dim: int = 512) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise FaceBoneError(f"IResNet depth must be one of {sorted(BLOCKS_PER_STAGE)}")
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for index, (count, planes) in enumerate(
            zip(BLOCKS_PER_STAGE[depth], STAGE_WIDTHS, strict=True), 1
        ):
            blocks = [IBasicBlock(inplanes, planes, stride=2)]
            blocks += [IBasicBlock(planes, planes, stride=1) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a tensors-only `.pth`; never unpickles objects."""
    if not path.is_file():
        raise FaceBoneError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise FaceBoneError(f"{path}: not a loadable weights file ({error})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FaceBoneError(f"{path}: expected a state dict of tensors")
    return state


def save_weights(model: IResNet, path: Path) -> None:
    """Write a model's weights as safetensors (used for round trips and exports)."""
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))


class IResNetBackbone(Backbone):
    input_size = 112

    def __init__(
        self,
        depth: int,
        weights: str | Path | None = None,
        random_init: bool = False,
        seed: int = 0,
        batch_size: int = 16,
    ) -> None:
        self.name = f"iresnet{depth}"
        self.batch_size = batch_size
        torch.manual_seed(seed)
        self.model = IResNet(depth)
        if weights is not None:
            path = Path(weights)
            try:
                self.model.load_state_dict(load_state_dict(path))
            except RuntimeError as error:
                first = str(error).splitlines()[0]
                raise FaceBoneError(f"{path}: weights do not fit {self.name} ({first})") from None
            self.weights_id = file_sha256(path)
        elif random_init:
            self.weights_id = f"random-seed{seed}"
        else:
            raise FaceBoneError(f"{self.name} needs a weights file: use {self.name}:PATH")
        self.model.eval()
        self.embedding_dim = self.model.features.num_features

    @torch.inference_mode()
    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        outputs = [np.empty((0, self.embedding_dim), dtype=np.float32)]
        for batch in batches(faces, self.batch_size):
            array = (np.stack(batch).astype(np.float32) - 127.5) / 127.5
            tensor = torch.from_numpy(array.transpose(0, 3, 1, 2).copy())
            outputs.append(self.model(tensor).numpy().astype(np.float32))
        return np.concatenate(outputs)


for _depth in BLOCKS_PER_STAGE:
    register_backbone(f"iresnet{_depth}", depth=_depth)(IResNetBackbone)
