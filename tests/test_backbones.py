"""Backbone zoo: real models separate same from different people on real LFW pairs."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from facebone.assets import sface_path
from facebone.backbones import create_backbone, list_backbones
from facebone.backbones.iresnet import IResNet, save_weights
from facebone.backbones.onnx_model import OnnxBackbone
from facebone.errors import FaceBoneError
from facebone.faces.detect import FaceDetector, find_face
from facebone.faces.image import load_image


def _cosine_auc(embeddings: dict[str, np.ndarray], pairs) -> float:
    scores = []
    for pair in pairs:
        a, b = embeddings[pair.image1], embeddings[pair.image2]
        scores.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
    return roc_auc_score([pair.label for pair in pairs], scores)


def test_registry_lists_every_family_and_rejects_unknown_names():
    names = list_backbones()
    assert {"sface", "dlib", "onnx", "iresnet18", "iresnet34", "iresnet50", "iresnet100"} <= set(
        names
    )
    with pytest.raises(FaceBoneError, match=r"unknown backbone .arcface.*sface"):
        create_backbone("arcface")


@pytest.mark.parametrize("name", ["sface", "dlib"])
def test_same_person_scores_higher_than_different_people(name, lfw_embeddings, protocol):
    pairs = protocol["target_test"]
    assert len(pairs) > 300
    auc = _cosine_auc(lfw_embeddings(name), pairs)
    assert auc > 0.98, f"{name} cosine AUC {auc:.4f} on {len(pairs)} test pairs"


def _aligned_crops(lfw_root, backbone, names):
    detector = FaceDetector()
    crops = []
    for name in names:
        image = load_image(lfw_root / name)
        crops.append(backbone.align(image, find_face(detector, image, name, fallback=False)))
    return crops


PHOTOS = ["Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg"]


def test_onnx_backbone_runs_a_user_model_file_like_the_builtin(tmp_path, lfw_root, backbone_pool):
    model = tmp_path / "sface.onnx"
    model.write_bytes(sface_path().read_bytes())
    (tmp_path / "sface.onnx.json").write_text(json.dumps({"mean": 0.0, "std": 1.0}))
    user = create_backbone(f"onnx:{model}")
    assert user.input_size == 112 and user.embedding_dim == 128
    builtin = backbone_pool("sface")
    crops = _aligned_crops(lfw_root, builtin, PHOTOS)
    np.testing.assert_allclose(user.embed(crops), builtin.embed(crops), atol=1e-3)


def test_onnx_cache_key_follows_the_input_settings(tmp_path):
    """Embeddings cached under one normalisation must not be reused under another."""
    model = tmp_path / "sface.onnx"
    model.write_bytes(sface_path().read_bytes())
    keys = {
        settings: OnnxBackbone(model, **dict(settings)).cache_key
        for settings in (
            (("mean", 0.0), ("std", 1.0)),
            (("mean", 127.5), ("std", 127.5)),
            (("mean", 0.0), ("std", 1.0), ("color", "bgr")),
        )
    }
    assert len(set(keys.values())) == 3
    assert OnnxBackbone(model, mean=0.0, std=1.0).cache_key == keys[(("mean", 0.0), ("std", 1.0))]
    # The settings file beside the model counts like the arguments.
    (tmp_path / "sface.onnx.json").write_text(json.dumps({"mean": 0.0, "std": 1.0}))
    assert create_backbone(f"onnx:{model}").cache_key == keys[(("mean", 0.0), ("std", 1.0))]
    (tmp_path / "sface.onnx.json").write_text(json.dumps({"mean": 0.0, "std": 2.0}))
    assert create_backbone(f"onnx:{model}").cache_key not in keys.values()


def test_onnx_backbone_errors(tmp_path):
    with pytest.raises(FaceBoneError, match="does not exist"):
        create_backbone(f"onnx:{tmp_path / 'missing.onnx'}")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(FaceBoneError, match="not a readable ONNX model"):
        create_backbone(f"onnx:{broken}")
    with pytest.raises(FaceBoneError, match="needs a model file"):
        create_backbone("onnx")


def test_iresnet_shapes_with_random_weights():
    backbone = create_backbone("iresnet18", random_init=True)
    crops = [np.random.default_rng(i).integers(0, 255, (112, 112, 3), np.uint8) for i in range(3)]
    embeddings = backbone.embed(crops)
    assert embeddings.shape == (3, 512) and embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()


@pytest.mark.slow
def test_iresnet_weights_round_trip_through_safetensors_and_pth(tmp_path):
    torch.manual_seed(3)
    model = IResNet(18).eval()
    save_weights(model, tmp_path / "r18.safetensors")
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    crops = [np.random.default_rng(i).integers(0, 255, (112, 112, 3), np.uint8) for i in range(2)]
    expected = model(
        torch.from_numpy(((np.stack(crops) - 127.5) / 127.5).transpose(0, 3, 1, 2)).float()
    ).detach()
    for file in ("r18.safetensors", "r18.pth"):
        loaded = create_backbone(f"iresnet18:{tmp_path / file}")
        np.testing.assert_allclose(loaded.embed(crops), expected.numpy(), atol=1e-5)


class Payload:
    """An arbitrary object: unpickling it would run user code."""


def test_iresnet_refuses_pickled_objects_and_mismatched_weights(tmp_path):
    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(FaceBoneError, match="not a loadable weights file"):
        create_backbone(f"iresnet18:{tmp_path / 'evil.pth'}")
    save_weights(IResNet(18), tmp_path / "r18.safetensors")
    with pytest.raises(FaceBoneError, match="do not fit iresnet34"):
        create_backbone(f"iresnet34:{tmp_path / 'r18.safetensors'}")
    with pytest.raises(FaceBoneError, match="needs a weights file"):
        create_backbone("iresnet50")
