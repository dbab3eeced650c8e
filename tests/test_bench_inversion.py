"""`facebone bench --inversion` on a handful of real LFW faces: every figure present, positive
and finite (speed itself is never asserted), and --device cuda refused where torch sees no GPU."""

import json
import math

import pytest
import torch

from facebone.cli import main

TINY = ["--images", "6", "--epochs", "1", "--steps", "2", "--queries", "20", "--targets", "2"]


def _bench(lfw_root, cache_dir, *extra: str) -> list[str]:
    return ["bench", "--data", str(lfw_root), "--cache", str(cache_dir), "--inversion", *extra]


@pytest.mark.slow
def test_bench_inversion_json(lfw_root, cache_dir, capsys):
    assert main([*_bench(lfw_root, cache_dir, *TINY), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "cpu" and result["seed"] == 0
    assert result["machine"]["torch_threads"] >= 1 and "gpu" not in result["machine"]
    figures = result["inversion"]
    rates = {"decoder": "faces_per_s", "optimise": "steps_per_s", "blackbox": "queries_per_s"}
    implied = {
        "decoder": "implied_minutes",
        "optimise": "implied_seconds_per_batch",
        "blackbox": "implied_seconds_per_target",
    }
    assert set(figures) == set(rates)
    for method, key in (*rates.items(), *implied.items()):
        assert math.isfinite(figures[method][key]) and figures[method][key] > 0, (method, key)
    decoder = figures["decoder"]
    # Timed on the first 6 of seed 0's attacker images, scaled to all of them.
    assert decoder["faces"] == 6 and decoder["attacker_faces"] > 6
    assert decoder["default_epochs"] == 30 and decoder["image_size"] == 64
    assert figures["optimise"]["batch"] == 2 and figures["optimise"]["default_steps"] == 50
    blackbox = figures["blackbox"]
    assert blackbox["queries_timed"] == 2 * 20 and blackbox["default_queries_per_target"] == 400


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a GPU here")
def test_bench_inversion_cuda_unavailable(lfw_root, cache_dir, capsys):
    assert main([*_bench(lfw_root, cache_dir, "--device", "cuda"), "--json"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--device cuda: torch sees no GPU" in error


def test_bench_device_needs_inversion(lfw_root, capsys):
    assert main(["bench", "--data", str(lfw_root), "--device", "cuda"]) == 2
    assert "--device applies to --inversion only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--images", "1"], "--images of at least 2"),
        (["--queries", "10"], "--queries of at least 20"),
        (["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_bench_inversion_bad_flags(lfw_root, cache_dir, extra, message, capsys):
    assert main(_bench(lfw_root, cache_dir, *extra)) == 2
    assert message in capsys.readouterr().err
