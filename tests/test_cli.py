"""The command line: bad input is one line on stderr and exit code 2, never a traceback."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from facebone.cli import main

PHOTO = "Colin_Powell/Colin_Powell_0009.jpg"


def _bad_inputs(tmp_path, lfw_root):
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    data = (lfw_root / PHOTO).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    tiny = tmp_path / "tiny.jpg"
    Image.new("RGB", (1, 1)).save(tiny)
    huge = tmp_path / "huge.jpg"
    Image.new("RGB", (10000, 10000)).save(huge)
    gray = tmp_path / "gray.jpg"
    Image.open(lfw_root / PHOTO).convert("L").save(gray)
    rgba = tmp_path / "rgba.png"
    Image.open(lfw_root / PHOTO).convert("RGBA").save(rgba)
    noface = tmp_path / "noface.jpg"
    Image.new("RGB", (250, 250), (120, 140, 160)).save(noface)
    return {
        "text": (text, "not a readable image"),
        "empty": (empty, "file is empty"),
        "truncated": (truncated, "damaged image"),
        "tiny": (tiny, "too small"),
        "huge": (huge, "too large"),
        "gray": (gray, "grayscale"),
        "rgba": (rgba, "alpha channel"),
        "noface": (noface, "no face found"),
        "missing": (tmp_path / "missing.jpg", "no such file"),
    }


def test_each_bad_image_gives_one_line_and_exit_2(tmp_path, lfw_root, capsys):
    for name, (path, message) in _bad_inputs(tmp_path, lfw_root).items():
        code = main(["embed", "--images", str(path), "--backbones", "sface"])
        err = capsys.readouterr().err
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, err)
        assert "Traceback" not in err


def test_real_process_exit_code_and_stderr(tmp_path, lfw_root):
    path, _ = _bad_inputs(tmp_path, lfw_root)["noface"]
    result = subprocess.run(
        [sys.executable, "-m", "facebone", "embed", "--images", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("facebone: error:")
    assert "Traceback" not in result.stderr


def test_converted_colours_are_accepted_on_request(tmp_path, lfw_root, capsys):
    gray, _ = _bad_inputs(tmp_path, lfw_root)["gray"]
    assert main(["embed", "--images", str(gray), "--convert-color", "--json"]) == 0
    vectors = json.loads(capsys.readouterr().out)["embeddings"][str(gray)]
    assert len(vectors["sface"]) == 128


def test_embed_folder_twice_second_run_all_cached(tmp_path, lfw_root, capsys):
    data = tmp_path / "data" / "Colin_Powell"
    data.mkdir(parents=True)
    for file in sorted((lfw_root / "Colin_Powell").iterdir())[:4]:
        (data / file.name).write_bytes(file.read_bytes())
    args = ["embed", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "c"), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["computed"] == 4
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cached"] == 4 and result["computed"] == 0


def test_bad_image_inside_a_dataset_names_the_file(tmp_path, capsys):
    person = tmp_path / "data" / "Someone"
    person.mkdir(parents=True)
    (person / "Someone_0001.jpg").write_text("not a jpeg")
    code = main(["embed", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "c")])
    assert code == 2
    assert "Someone_0001.jpg: not a readable image" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "--data", "/nonexistent", "--backbones", "sface"], "does not exist"),
        (["embed", "--images", PHOTO, "--backbones", "sface,nope"], "unknown backbone 'nope'"),
        (["pairs", "--data", "/nonexistent", "--out", "x"], "does not exist"),
        (["bench", "--data", "/nonexistent"], "does not exist"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_bench_json_shape(lfw_root, capsys):
    assert (
        main(["bench", "--data", str(lfw_root), "--images", "8", "--backbones", "sface", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)["backbones"]["sface"]
    assert result["end_to_end_images_per_s"] > 0 and result["model_images_per_s"] > 0
    assert result["batch_size"] == 8
