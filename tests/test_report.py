"""`facebone report`: a real study on LFW faces rendered as one self-contained HTML file and a
Markdown summary, with the tables, the prototype's figures and non-empty images."""

import base64
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from facebone.cli import main
from facebone.embeddings import EmbeddingCache
from facebone.reports.document import Figure, Report, Section, Table
from facebone.reports.html import render_html
from facebone.reports.markdown import render_markdown
from facebone.studies.config import load_config
from facebone.studies.engine import run_study
from facebone.studies.executors import LocalExecutor

STUDY = """
name = "report-test"
data = "{data}"
output = "{out}"

[splits]
seeds = [0]

[systems]
defenses = ["none", "cosine"]
regimes = ["leaking"]

[[attacks]]
name = "lira"
shadows = 2

[[attacks]]
name = "rule-based"
"""
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
PNG = b"\x89PNG\r\n\x1a\n"


def _decoded(png: bytes) -> np.ndarray:
    assert png.startswith(PNG) and len(png) > 0
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None and pixels.size > 0
    return pixels


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    """A stored study: undefended nn and cosine in the leaking regime, seed 0, two attacks;
    one inversion grid of real faces in grids/."""
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("report")
    config_file = root / "study.toml"
    config_file.write_text(STUDY.format(data=lfw_root, out=root / "results"))
    executor = LocalExecutor(EmbeddingCache(cache_dir))
    try:
        run_study(load_config(config_file), executor, progress=False)
    finally:
        executor.close()
    faces = [
        cv2.imread(str(lfw_root / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg")) for n in (9, 11)
    ]
    grid = np.concatenate([cv2.resize(face, (64, 64)) for face in faces], axis=1)
    (root / "results" / "grids").mkdir()
    cv2.imwrite(str(root / "results" / "grids" / "inversion-grid.png"), grid)
    (root / "results" / "inversion-broken.png").write_bytes(b"not a png")
    # Shaped as `facebone attack inversion` writes it: a headline and each threat model.
    scores = {"sar": {"type1": {"far_0.001": 0.25, "far_0.01": 0.5}, "type2": {}}, "ssim": 0.4}
    inversion = {**scores, "method": "decoder", "threat_models": {"undefended": scores}}
    (root / "results" / "grids" / "inversion.json").write_text(json.dumps(inversion))
    return root / "results"


@pytest.fixture(scope="module")
def report(study_dir):
    assert main(["report", str(study_dir), "--json"]) == 0
    return {
        "html": (study_dir / "report.html").read_text(encoding="utf-8"),
        "markdown": (study_dir / "report.md").read_text(encoding="utf-8"),
    }


def test_html_holds_the_tables_and_the_prototypes_figures(report):
    html = report["html"]
    for header in ("TAR@FAR 1%", "TAR@FAR 0.1%", "advantage", "TPR@0.1%FPR", "Chance bound"):
        assert header in html
    for section in ("Utility", "Privacy: leaking regime, pair level", "identity level"):
        assert section in html
    assert "<code>undefended</code>" in html and "<code>cosine</code>" in html
    assert "<code>none</code>" not in html  # "none" would read as "no system"
    for figure in ("0.86", "0.89", "0.97", "0.82"):
        assert f"<td>{figure}</td>" in html
    assert "attack model&#x27;s own training data" in html
    assert "Meet the goal:" in html and "Recommended:" in html


def test_html_is_self_contained_with_valid_non_empty_images(report, study_dir):
    html = report["html"]
    assert "<script" not in html and "<link" not in html
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing fetched from elsewhere
    images = [base64.b64decode(data) for data in DATA_URI.findall(html)]
    # Two ROC figures (pair, identity), the frontier and the one valid inversion grid.
    assert len(images) == 4
    for png in images:
        assert _decoded(png).std() > 0  # not a blank image
    grid = (study_dir / "grids" / "inversion-grid.png").read_bytes()
    assert grid in images
    assert "inversion-broken" not in html
    # The inversion scores beside the grid: SAR type I at FAR 0.1% and 1%, no type II.
    row = "<td>grids/inversion.json (decoder) / undefended</td><td>25.0%</td><td>50.0%</td>"
    assert row + "<td>-</td>" in html


def test_markdown_summary_has_the_same_tables_and_png_files(report, study_dir):
    markdown = report["markdown"]
    assert "| defense | regime | accuracy | AUC | TAR@FAR 1% | TAR@FAR 0.1% |" in markdown
    assert "| figure | original prototype | this study |" in markdown
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(linked) == 4
    for name in linked:
        assert _decoded((study_dir / name).read_bytes()).std() > 0
    # Each table row of the Markdown is in the HTML too.
    row = next(line for line in markdown.splitlines() if line.startswith("| `undefended` | leak"))
    assert row.split(" | ")[2] in report["html"]


def test_the_verdict_names_each_figures_level(report):
    """Each strongest-attack figure of a verdict row may come from another level: each says
    which attack and level it is."""
    header = "| defense | regime | accuracy | strongest AUC | TPR@1%FPR | TPR@0.1%FPR |"
    lines = report["markdown"].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    for row in lines[start + 2 : start + 4]:
        cells = row.split(" | ")
        for cell in cells[3:6]:
            assert re.search(r"\((lira|rule-based), (pair|identity)\)$", cell), row
    assert "**Recommended:** none" not in report["markdown"]


@pytest.mark.slow
def test_report_never_replaces_files_without_force(report, study_dir, capsys):
    before = (study_dir / "report.html").read_bytes()
    assert main(["report", str(study_dir)]) == 2
    error = capsys.readouterr().err
    assert "already exist" in error and "--force" in error and len(error.splitlines()) == 1
    assert (study_dir / "report.html").read_bytes() == before
    other = study_dir.parent / "elsewhere" / "audit.html"
    assert main(["report", str(study_dir), "--out", str(other), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["files"]
    assert {p.split("/")[-1] for p in written[:2]} == {"audit.html", "audit.md"}
    assert main(["report", str(study_dir), "--force"]) == 0
    assert not list(study_dir.glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.slow
def test_nothing_made_from_results_is_written_inside_the_studys_data(
    study_dir, lfw_root, tmp_path, capsys
):
    """The study's data root (study.json's "data") gets no report, figure or export: its
    files would be read as photos. Here the study is moved onto a copy of some of its photos,
    so that nothing could ever be written into the shared LFW folder."""
    results = shutil.copytree(study_dir, tmp_path / "results")
    data = tmp_path / "data"
    shutil.copytree(lfw_root / "Colin_Powell", data / "Colin_Powell")
    study = json.loads((results / "study.json").read_text())
    (results / "study.json").write_text(json.dumps({**study, "data": str(data)}))
    before = sorted(data.rglob("*"))
    person = data / "Colin_Powell"
    for argv, what in [
        (["report", str(results), "--out", str(person / "r.html")], "the report file"),
        (["report", str(results), "--out", str(data / "x" / ".." / "r.html")], "the report file"),
        (["study", "export", str(results), "--out", str(person / "r.csv")], "--out"),
    ]:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"{what} " in error and "inside the data folder" in error, error
        assert len(error.strip().splitlines()) == 1
    assert sorted(data.rglob("*")) == before
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize(
    ("target", "out", "message"),
    [
        ("missing", None, "does not exist"),
        ("empty", None, "holds no study results"),
        ("results", "report.txt", "must be an .html file"),
    ],
)
def test_report_errors_are_one_line(study_dir, tmp_path, capsys, target, out, message):
    (tmp_path / "empty").mkdir()
    folder = study_dir if target == "results" else tmp_path / target
    argv = ["report", str(folder)] + ([] if out is None else ["--out", str(tmp_path / out)])
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_text_is_escaped_in_both_renderings():
    hostile = '<img src=x onerror="alert(1)">|`name`'
    report = Report(
        "t & <t>",
        (hostile,),
        (
            Section(
                "s",
                (Table.of(["a|b", "c"], [[hostile, "**bold**"]]), Figure("f.png", PNG, hostile)),
            ),
        ),
    )
    html = render_html(report)
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<code>name</code>" in html and "<strong>bold</strong>" in html
    markdown = render_markdown(report)
    assert "| a\\|b | c |" in markdown and "\\|`name`" in markdown


def test_a_frontier_point_inside_the_goals_box_that_fails_is_not_drawn_green():
    from facebone.experiments.verdict import GOAL
    from facebone.reports.figures import frontier, frontier_status

    points = [
        {"defense": "none", "regime": "r", "accuracy": 0.995, "attack_auc": 0.52, "meets_goal": 0},
        {"defense": "a", "regime": "r", "accuracy": 0.995, "attack_auc": 0.51, "meets_goal": 1},
        {"defense": "b", "regime": "r", "accuracy": 0.9, "attack_auc": 0.8, "meets_goal": 0},
    ]
    assert [frontier_status(p, GOAL) for p in points] == ["inside", "meets", "fails"]
    assert _decoded(frontier(points, GOAL)).std() > 0
