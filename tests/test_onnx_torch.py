"""The differentiable torch copy of SFace gives onnxruntime's embeddings on real LFW faces."""

import numpy as np
import pytest
import torch

from facebone.attacks.inversion.base import aligned_faces
from facebone.backbones import create_backbone
from facebone.backbones.onnx_torch import differentiable_backbone
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError


@pytest.fixture(scope="module")
def faces(lfw_root, protocol, cache_dir):
    paths = list(dict.fromkeys(p for pair in protocol["attacker"][:6] for p in pair[:2]))
    return aligned_faces(lfw_root, paths, 112, EmbeddingCache(cache_dir))


@pytest.mark.slow
def test_sface_copy_matches_onnxruntime_and_has_gradients(faces):
    expected = create_backbone("sface", runtime="onnxruntime").embed(list(faces))
    pixels = torch.from_numpy(faces).permute(0, 3, 1, 2).float().requires_grad_(True)
    copy = differentiable_backbone("sface")
    embedded = copy(pixels)
    assert np.abs(embedded.detach().numpy() - expected).max() < 1e-4
    embedded.pow(2).sum().backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    assert all(not buffer.requires_grad for buffer in copy.buffers())


def test_dlib_has_no_differentiable_copy():
    with pytest.raises(FaceBoneError, match="no differentiable copy"):
        differentiable_backbone("dlib")


def test_onnx_spec_copies_the_backbone_normalisation(faces):
    """`onnx:PATH` with InsightFace's default (x - 127.5) / 127.5: the copy normalises as the
    onnxruntime backbone does."""
    from facebone.assets import sface_path

    spec = f"onnx:{sface_path()}"
    expected = create_backbone(spec).embed(list(faces[:2]))
    with torch.no_grad():
        copied = differentiable_backbone(spec)(
            torch.from_numpy(faces[:2]).permute(0, 3, 1, 2).float()
        )
    assert np.abs(copied.numpy() - expected).max() < 1e-4
