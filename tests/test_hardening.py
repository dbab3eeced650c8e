"""Issue 8, on real LFW files: no data loss, nothing read outside the data root, clean failures.

Each test fails on the code before the fix: files deleted, paths outside the data folder
read, tracebacks, workers left running, damaged cache entries trusted.
"""

import io
import itertools
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from facebone.cli import main
from process_checks import is_alive
from web_images import header_only_png

PEOPLE = ("Colin_Powell", "Tony_Blair", "George_W_Bush", "Gerhard_Schroeder")


def run_error(capsys, argv) -> str:
    """Run a command that must fail: exit 2 and one line on stderr, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def write_csv(path: Path, rows: list[tuple[str, str, int]], header: str = "image1,image2,label"):
    path.write_text(header + "\n" + "".join(f"{a},{b},{label}\n" for a, b, label in rows))
    return path


@pytest.fixture
def data(tmp_path, lfw_root) -> Path:
    """A data root of real LFW photos: three of each of four people."""
    root = tmp_path / "data"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for file in sorted((lfw_root / person).iterdir())[:3]:
            shutil.copy(file, root / person / file.name)
    return root


def _fewer_rows(data: Path) -> list[tuple[str, str, int]]:
    """Six of the pairs, same-person and different-person ones."""
    rows = _pair_rows(data)
    return rows[:3] + rows[-3:]


def _pair_rows(data: Path) -> list[tuple[str, str, int]]:
    images = {p: sorted(f"{p}/{f.name}" for f in (data / p).iterdir()) for p in PEOPLE}
    same = [(a, b, 1) for files in images.values() for a, b in itertools.pairwise(files)]
    different = [
        (images[p][0], images[q][1], 0)
        for p, q in zip(PEOPLE, PEOPLE[1:] + PEOPLE[:1], strict=True)
    ]
    return same + different


@pytest.fixture
def pairs_csv(data, tmp_path) -> Path:
    return write_csv(tmp_path / "pairs.csv", _pair_rows(data))


def train_args(data, pairs, out, cache_dir) -> list[str]:
    return [
        "train",
        "--data",
        str(data),
        "--pairs",
        str(pairs),
        "--predictor",
        "cosine",
        "--cache",
        str(cache_dir),
        "--out",
        str(out),
    ]


def membership_args(data: Path, tmp_path: Path, plot: Path) -> list[str]:
    """`attack membership` whose inputs are all missing: only the output checks can answer."""
    missing = str(tmp_path / "missing.csv")  # read after the output check, never reached
    return [
        "attack",
        "membership",
        "--model",
        str(tmp_path / "no-model"),
        "--data",
        str(data),
        "--members",
        missing,
        "--nonmembers",
        missing,
        "--attacker",
        missing,
        "--plot",
        str(plot),
    ]


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write to: by permissions, or (as root, who ignores them) by a
    read-only mount."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("running as root where a read-only folder cannot be mounted")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


# --- data loss -----------------------------------------------------------------------------


def test_train_refuses_a_folder_whose_config_is_not_a_model(
    data, pairs_csv, tmp_path, cache_dir, capsys
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "notes.txt").write_text("my notes")
    assert "not a FaceBone model" in run_error(capsys, train_args(data, pairs_csv, out, cache_dir))
    forced = [*train_args(data, pairs_csv, out, cache_dir), "--force"]
    assert "not a FaceBone model" in run_error(capsys, forced)
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "config.json").read_text() == '{"my": "settings"}'


def test_retraining_replaces_only_what_facebone_wrote(data, pairs_csv, tmp_path, cache_dir, capsys):
    out = tmp_path / "model"
    assert main(train_args(data, pairs_csv, out, cache_dir)) == 0
    (out / "NOTES.md").write_text("why this model")
    (out / "plots").mkdir()
    (out / "plots" / "roc.png").write_bytes(b"png")
    config = (out / "config.json").read_text()
    err = run_error(capsys, train_args(data, pairs_csv, out, cache_dir))
    assert "NOTES.md" in err and "--force" in err
    assert (out / "config.json").read_text() == config
    fewer = write_csv(tmp_path / "fewer.csv", _fewer_rows(data))
    assert main([*train_args(data, fewer, out, cache_dir), "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_pairs"] == 6
    assert (out / "NOTES.md").read_text() == "why this model"
    assert (out / "plots" / "roc.png").read_bytes() == b"png"
    assert json.loads((out / "config.json").read_text())["n_training_pairs"] == 6


def test_train_refuses_a_key_file_inside_its_model_folder(data, tmp_path, cache_dir, capsys):
    """Refused before any work: the pairs file does not even exist."""
    out = tmp_path / "model"
    argv = train_args(data, tmp_path / "missing.csv", out, cache_dir)
    key = ["--template-protection", "biohash", "--key-file", str(out / "keys" / "face.key")]
    err = run_error(capsys, [*argv, *key])
    assert "--key-file" in err and "inside --out" in err and "never hold its key" in err
    assert not out.exists()


def test_model_directories_get_the_users_umask(data, pairs_csv, tmp_path, cache_dir):
    umask = os.umask(0)
    os.umask(umask)
    out = tmp_path / "model"
    assert main(train_args(data, pairs_csv, out, cache_dir)) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    for name in ("config.json", "predictor.safetensors"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask
    out.chmod(0o750)
    assert main(train_args(data, pairs_csv, out, cache_dir)) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_pairs_keeps_edited_pair_lists_unless_forced(lfw_root, tmp_path, capsys):
    argv = ["pairs", "--data", str(lfw_root), "--out", str(tmp_path / "p"), "--seed", "1"]
    assert main(argv) == 0
    assert main(argv) == 0  # the same options write the same files: nothing to protect
    edited = tmp_path / "p" / "target_train.csv"
    edited.write_text(edited.read_text() + "Colin_Powell/x.jpg,Tony_Blair/y.jpg,0\n")
    mine = edited.read_text()
    assert "target_train.csv already holds other pairs" in run_error(capsys, argv)
    assert edited.read_text() == mine
    assert main([*argv, "--force"]) == 0
    assert edited.read_text() != mine


@pytest.mark.parametrize("command", ["train", "pairs", "embed", "attack"])
def test_unwritable_outputs_fail_before_the_work(
    command, data, pairs_csv, tmp_path, read_only_dir, cache_dir, capsys
):
    missing = str(tmp_path / "missing.csv")  # read after the output check, never reached
    target = read_only_dir / "out"
    argv = {
        "train": train_args(data, missing, target, cache_dir),
        "pairs": ["pairs", "--data", str(data), "--out", str(target)],
        "embed": ["embed", "--data", str(data), "--cache", str(target)],
        "attack": membership_args(data, tmp_path, target / "roc.png"),
    }[command]
    err = run_error(capsys, argv)
    assert "cannot be written" in err and str(target) in err


# --- reading outside the data root ----------------------------------------------------------


@pytest.mark.parametrize("escape", ["dotdot-system", "absolute", "dotdot-image", "symlink"])
def test_pairs_must_stay_inside_the_data_root(escape, data, tmp_path, lfw_root, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    photo = shutil.copy(lfw_root / "Tony_Blair" / "Tony_Blair_0005.jpg", outside / "x.jpg")
    bad = {
        "dotdot-system": "../../../../../../etc/passwd",
        "absolute": str(photo),
        "dotdot-image": "../outside/x.jpg",
        "symlink": "Colin_Powell/link.jpg",
    }[escape]
    (data / "Colin_Powell" / "link.jpg").symlink_to(photo)
    rows = _pair_rows(data)
    csv_path = write_csv(tmp_path / "bad.csv", [rows[0], (rows[1][0], bad, 0), *rows[2:]])
    err = run_error(capsys, ["pairs", "--data", str(data), "--check", str(csv_path)])
    assert "line 3" in err and "outside the data folder" in err


def test_repeated_pairs_are_counted_and_refused_for_training(
    data, tmp_path, cache_dir, capsys, caplog
):
    rows = _pair_rows(data)
    first = rows[0]
    csv_path = write_csv(tmp_path / "repeats.csv", [*rows, first, (first[1], first[0], 1)])
    assert main(["pairs", "--data", str(data), "--check", str(csv_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repeated"] == 2
    assert "2 rows repeat an earlier pair" in caplog.text
    out = tmp_path / "model"
    err = run_error(capsys, train_args(data, csv_path, out, cache_dir))
    assert f"line {len(rows) + 2}" in err and "repeats the pair of line 2" in err
    assert not out.exists()


@pytest.mark.parametrize("alias", ["same", "dot-slash", "double-slash"])
def test_a_photo_paired_with_itself_is_refused(alias, data, tmp_path, capsys):
    rows = _pair_rows(data)
    photo = rows[0][0]
    other = {"same": photo, "dot-slash": f"./{photo}", "double-slash": photo.replace("/", "//")}
    csv_path = write_csv(tmp_path / "self.csv", [*rows, (photo, other[alias], 1)])
    err = run_error(capsys, ["pairs", "--data", str(data), "--check", str(csv_path)])
    assert f"line {len(rows) + 2}" in err and "with itself" in err


def test_a_byte_order_mark_before_the_header_is_accepted(data, tmp_path, capsys):
    csv_path = write_csv(tmp_path / "bom.csv", _pair_rows(data), header="\ufeffimage1,image2,label")
    assert main(["pairs", "--data", str(data), "--check", str(csv_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == len(_pair_rows(data))


def test_role_fractions_must_add_up_to_one(data, tmp_path, capsys):
    argv = [
        "pairs",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "p"),
        "--fractions",
        "0.9,0.9,0.9",
    ]
    assert "adding up to 1" in run_error(capsys, argv)
    assert not (tmp_path / "p").exists()


# --- clean failures -------------------------------------------------------------------------

WORKER_SCRIPT = """
import multiprocessing, sys, time
from facebone.backbones import create_backbone
from facebone.faces.detect import FaceDetector, find_face
from facebone.faces.image import load_image
backbone = create_backbone("dlib", workers=2)
image = load_image(sys.argv[1])
chip = backbone.align(image, find_face(FaceDetector(), image, sys.argv[1], fallback=True))
backbone.embed([chip] * 4)
print(" ".join(str(child.pid) for child in multiprocessing.active_children()), flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_dlib_workers_die_with_a_killed_parent(lfw_root):
    parent = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(lfw_root / "Colin_Powell/Colin_Powell_0009.jpg")],
        stdout=subprocess.PIPE,
        text=True,
    )
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(is_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(is_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if is_alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "dlib workers outlived their parent"


def test_damaged_cache_entries_are_recomputed(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["embed", "--data", str(data), "--cache", str(cache), "--json"]
    assert main(argv) == 0
    capsys.readouterr()
    entries = sorted(cache.rglob("*.npy"))
    good = np.load(entries[0])
    for entry, value in zip(entries, (np.nan, np.inf, 0.0), strict=False):
        np.save(entry, np.full(128, value, dtype=np.float32))
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["computed"] == 3
    np.testing.assert_allclose(np.load(entries[0]), good, rtol=1e-5)
    assert all(np.isfinite(np.load(e)).all() and np.load(e).any() for e in entries[:3])


def test_fixed_backbone_must_be_one_of_the_backbones(data, pairs_csv, tmp_path, cache_dir, capsys):
    out = tmp_path / "model"
    argv = [
        *train_args(data, pairs_csv, out, cache_dir),
        "--backbones",
        "sface,dlib",
        "--mitigation",
        "multi",
        "--infer",
        "fixed",
        "--fixed-backbone",
        "iresnet50",
    ]
    assert "iresnet50" in run_error(capsys, argv)
    assert not out.exists()


def test_weights_from_another_model_are_refused(data, pairs_csv, tmp_path, cache_dir, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    nn = ["--predictor", "nn", "--epochs", "3"]
    assert main([*train_args(data, pairs_csv, first, cache_dir), *nn]) == 0
    fewer = write_csv(tmp_path / "fewer.csv", _fewer_rows(data))
    assert main([*train_args(data, fewer, second, cache_dir), *nn]) == 0
    shutil.copy(second / "predictor.safetensors", first / "predictor.safetensors")
    photos = [
        str(data / "Colin_Powell" / f.name) for f in sorted((data / "Colin_Powell").iterdir())
    ]
    err = run_error(capsys, ["verify", *photos[:2], "--model", str(first)])
    assert "predictor.safetensors is not the one this model saved" in err


def test_a_model_path_that_is_a_file_says_so(tmp_path, data, capsys):
    model = tmp_path / "model.txt"
    model.write_text("not a folder")
    photo = str(data / "Tony_Blair" / sorted(os.listdir(data / "Tony_Blair"))[0])
    assert "is a file, not a folder" in run_error(
        capsys, ["verify", photo, photo, "--model", str(model)]
    )


@pytest.mark.parametrize("side", [12000, 30000])
def test_huge_images_are_too_large_whatever_their_size(side, tmp_path, capsys):
    png = tmp_path / f"huge-{side}.png"
    png.write_bytes(header_only_png(side, side))
    err = run_error(capsys, ["embed", "--images", str(png)])
    assert f"huge-{side}.png: image is too large" in err


def test_output_to_a_closed_pipe_ends_quietly(data, pairs_csv):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facebone",
            "pairs",
            "--data",
            str(data),
            "--check",
            str(pairs_csv),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader goes away, as `| head` does
    _, err = process.communicate(timeout=120)
    assert err == b"", err.decode()
    assert process.returncode == 141


def test_an_error_after_a_progress_bar_starts_on_its_own_line(data, tmp_path, capsys):
    (data / "Tony_Blair" / "Tony_Blair_9999.jpg").write_bytes(b"not a jpeg, but not empty")
    code = main(["embed", "--data", str(data), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert "embedding" in err  # the bar was drawn
    error_line = next(line for line in err.split("\n") if "facebone: error" in line)
    assert error_line.startswith("facebone: error: ") and "Tony_Blair_9999.jpg" in error_line


def test_log_lines_go_above_progress_bars():
    from facebone.cli.output import ProgressAwareHandler

    stream = io.StringIO()
    handler = ProgressAwareHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("facebone.test_progress")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with tqdm(total=3, file=stream, desc="working") as bar:
            bar.update(1)
            logger.warning("half way")
    finally:
        logger.removeHandler(handler)
    assert "WARNING half way" in re.split(r"[\r\n]", stream.getvalue())
