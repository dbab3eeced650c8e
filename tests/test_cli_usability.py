"""Issue 8, a CLI that answers at once and says what it does, on real LFW photos."""

import argparse
import json
import logging
import re
import subprocess
import sys

import pytest

from facebone.cli import build_parser, main
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.system import FRSystem

HEAVY = ("torch", "sklearn", "cv2", "art", "matplotlib", "opacus", "dlib", "onnxruntime")
# Two faces: Alejandro Toledo in the centre, someone else beside him.
TWO_FACES = "Alejandro_Toledo/Alejandro_Toledo_0025.jpg"
TOLEDO = "Alejandro_Toledo/Alejandro_Toledo_0015.jpg"


def test_building_the_parser_imports_nothing_heavy():
    code = (
        "import sys; import facebone.cli as cli; cli.build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"imported at start: {done.stdout.strip()}"


def test_embedding_with_sface_loads_neither_torch_nor_dlib(lfw_root):
    code = (
        "import sys; from facebone.cli import main; "
        f"main(['embed', '--images', {str(lfw_root / TOLEDO)!r}, '--json']); "
        "print(','.join(m for m in ('torch', 'dlib') if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "", done.stderr


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_says_what_it_does_and_its_default():
    for parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = f"{parser.prog} {(action.option_strings or [action.dest])[0]}"
            assert action.help, f"{name} has no help"
            has_default = action.default is not None and action.default is not False
            if action.option_strings and has_default:
                assert "default" in formatter._expand_help(action), f"{name} hides its default"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    """Pairs of the shared protocol and an SFace + cosine model trained on them."""
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("usability")
    assert (
        main(["pairs", "--data", str(lfw_root), "--out", str(root / "pairs"), "--seed", "0"]) == 0
    )
    train = [
        "train",
        "--data",
        str(lfw_root),
        "--pairs",
        str(root / "pairs" / "target_train.csv"),
        "--predictor",
        "cosine",
        "--cache",
        str(cache_dir),
        "--out",
        str(root / "model"),
    ]
    assert main(train) == 0
    return root


def test_verify_warns_about_several_faces_and_face_picks_another(
    workspace, lfw_root, capsys, caplog
):
    argv = ["verify", str(lfw_root / TWO_FACES), str(lfw_root / TOLEDO)]
    argv += ["--model", str(workspace / "model"), "--json"]
    assert main(argv) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["same"] is True
    assert "Alejandro_Toledo_0025.jpg: 2 faces found; used face 1" in caplog.text
    assert main([*argv, "--face", "2,1"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["same"] is False and other["probability"] < same["probability"]
    assert "no face number 3; the photo has 2" in _error(capsys, [*argv, "--face", "3,1"])


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_attack_counts_people_shows_percent_and_says_where_the_plot_is(
    workspace, lfw_root, cache_dir, capsys
):
    pairs = workspace / "pairs"
    plot = workspace / "roc.png"
    argv = [
        "attack",
        "membership",
        "--model",
        str(workspace / "model"),
        "--data",
        str(lfw_root),
        "--members",
        str(pairs / "target_train.csv"),
        "--nonmembers",
        str(pairs / "target_test.csv"),
        "--attacker",
        str(pairs / "attacker.csv"),
        "--attacks",
        "rule-based",
        "--level",
        "identity",
        "--cache",
        str(cache_dir),
        "--plot",
        str(plot),
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    members = _people(pairs / "target_train.csv")
    assert header.startswith(f"membership at identity level ({len(members)} member, ")
    assert header.endswith("non-member people)")
    assert lines[2].startswith("rule-based") and re.search(r" \d+\.\d% ", lines[2])
    assert lines[-1] == f"ROC plot: {plot}" and plot.stat().st_size > 0


def _people(csv_path) -> set[str]:
    rows = csv_path.read_text().splitlines()[1:]
    return {image.split("/")[0] for row in rows for image in row.split(",")[:2]}


def test_embed_names_each_backbone_in_its_progress_and_summary(tmp_path, lfw_root, capsys):
    data = tmp_path / "data" / "Colin_Powell"
    data.mkdir(parents=True)
    for file in sorted((lfw_root / "Colin_Powell").iterdir())[:3]:
        (data / file.name).write_bytes(file.read_bytes())
    argv = ["embed", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "embedding with sface" in captured.err
    assert "sface: 0 from cache, 3 computed" in captured.out.splitlines()


def test_bench_says_what_it_measures_and_times_start_up(tmp_path, lfw_root, capsys, caplog):
    caplog.set_level(logging.INFO, logger="facebone")
    argv = ["bench", "--data", str(lfw_root), "--backbones", "", "--runs", "1", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["startup"]["runs"] == 1 and result["startup"]["median_ms"] > 0
    assert "measuring start-up: facebone --help" in caplog.text


def test_verify_embeds_both_photos_at_once_through_the_answering_backbone_only(
    lfw_root, protocol, cache_dir
):
    embedder = Embedder(["sface", "dlib"], EmbeddingCache(cache_dir), progress=False)
    calls = []
    for backbone in embedder.backbones:
        embed = backbone.embed
        backbone.embed = lambda faces, name=backbone.name, embed=embed: (
            calls.append((name, len(faces))) or embed(faces)
        )
    try:
        system = FRSystem(["sface", "dlib"], predictor="cosine", mitigation="multi")
        system.fit(embedder, lfw_root, protocol["target_train"][:40])
        photos = [lfw_root / "Colin_Powell/Colin_Powell_0009.jpg", lfw_root / TOLEDO]
        for infer, expected in [
            ("fixed", [("sface", 2)]),
            ("ensemble", [("sface", 2), ("dlib", 2)]),
        ]:
            system.infer = infer
            calls.clear()
            answer = system.verify(*photos)
            assert calls == expected and answer.same is False
    finally:
        embedder.close()
