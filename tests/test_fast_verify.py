"""Issue 8: a one-off `facebone verify` never imports PyTorch (about a second of its time):
the nn predictor answers in numpy, as torch's forward of the same saved weights would."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from facebone.attacks.embedding_target import embed_pairs
from facebone.cli import main
from facebone.predictors import create_predictor, l2_normalize, pair_features, predictor_from_state
from facebone.predictors.nn import build_mlp

POWELL = ["Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg"]


def _two_backbone_pairs(pairs, lfw_embeddings):
    """SFace pairs as source 0, the same pairs by dlib as source 1."""
    parts = [embed_pairs(lfw_embeddings(name), pairs) for name in ("sface", "dlib")]
    e1, e2, y = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    return e1, e2, y, np.repeat([0, 1], len(pairs))


@pytest.mark.parametrize(("hidden", "dropout"), [((128,), 0.0), ((64, 32), 0.2)])
def test_numpy_answers_equal_a_torch_forward_of_the_saved_weights(
    protocol, lfw_embeddings, tmp_path, hidden, dropout
):
    train = _two_backbone_pairs(protocol["target_train"], lfw_embeddings)
    e1, e2, _, source = _two_backbone_pairs(protocol["target_test"], lfw_embeddings)
    fitted = create_predictor("nn", hidden=hidden, dropout=dropout, epochs=20).fit(*train)
    config, tensors = fitted.get_state()
    save_file(tensors, str(tmp_path / "predictor.safetensors"))
    saved = load_file(str(tmp_path / "predictor.safetensors"))
    net = build_mlp(2 * e1.shape[1] + 1 + 2, hidden, dropout)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in saved.items()}, strict=True)
    net.eval()
    x = torch.from_numpy(pair_features(l2_normalize(e1), l2_normalize(e2), source, 2))
    with torch.no_grad():
        expected = torch.sigmoid(net(x).squeeze(1)).numpy()
    answers = predictor_from_state(config, saved).predict_proba(e1, e2, source)
    np.testing.assert_allclose(answers, expected, rtol=0, atol=1e-6)
    assert 0.05 < np.mean(answers > 0.5) < 0.95  # a real decision, not a constant


@pytest.fixture(scope="module")
def sface_nn_model(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("fast-verify")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(root / "pairs"), "--seed", "0"]) == 0
    )
    train = ["train", "--data", str(lfw_root), "--cache", str(cache_dir), "--json"]
    train += ["--pairs", str(root / "pairs" / "target_train.csv"), "--out", str(root / "model")]
    assert main([*train, "--backbones", "sface", "--predictor", "nn"]) == 0
    return root / "model"


def test_verifying_with_an_sface_nn_model_does_not_import_torch(sface_nn_model, lfw_root):
    code = (
        "import sys; from facebone.cli import main; status = main(sys.argv[1:]); "
        "heavy = [m for m in ('torch', 'opacus') if m in sys.modules]; "
        "print('imported:', *heavy, file=sys.stderr); sys.exit(status)"
    )
    photos = [str(lfw_root / photo) for photo in POWELL]
    done = subprocess.run(
        [sys.executable, "-c", code, "verify", *photos, "--model", str(sface_nn_model), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["same"] is True and answer["probability"] > 0.5
    assert done.stderr.strip().splitlines()[-1] == "imported:", done.stderr
