"""Issue 16: package imports are lazy (reading a study configuration or rendering a report
loads neither torch nor ART), and no command prints ART's import-time INFO line."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "art", "sklearn", "cv2", "matplotlib", "opacus", "ray")


@pytest.mark.parametrize(
    "module",
    [
        "facebone.studies.config",
        "facebone.studies.store",
        "facebone.reports.sources",
        "facebone.experiments",
        "facebone.attacks",
        "facebone.cli",
    ],
)
def test_importing_a_package_loads_nothing_heavy(module):
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.slow
def test_no_art_info_line(lfw_root, tmp_path):
    """A configuration whose attack loads ART, with an error found after it: stderr is the
    error alone."""
    config = tmp_path / "study.toml"
    config.write_text(
        f'data = "{lfw_root}"\noutput = "{tmp_path / "out"}"\nbackbones = ["nope"]\n'
        '[systems]\ndefenses = ["cosine"]\n[[attacks]]\nname = "blackbox-gb"\nshadows = 4\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "facebone", "study", "run", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"facebone: error: {config}: backbones[0]: unknown backbone 'nope'; choose from: "
        + done.stderr.split("choose from: ")[1].strip()
    ]
