"""Each page of the web demo through Streamlit's AppTest, on real LFW photos."""

import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from facebone.app.config import DemoConfig
from facebone.app.results import read_results
from facebone.app.views import demo_pages
from facebone.errors import FaceBoneError
from web_images import BLAIR, BLAIR_OTHER, POWELL, no_face, too_many_pixels, two_faces

JPEG = "image/jpeg"


def _render(view: str, argv: list[str]) -> None:
    import importlib

    from facebone.app.config import DemoConfig

    importlib.import_module(f"facebone.app.views.{view}").render(DemoConfig.from_argv(argv))


def open_page(view: str, config: DemoConfig) -> AppTest:
    app = AppTest.from_function(
        _render, kwargs={"view": view, "argv": config.to_argv()}, default_timeout=120
    )
    return app.run()


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, lfw_root, cache_dir):
    """A real study folder: the undefended nn and the cosine threshold in the leaking regime,
    two seeds, online LiRA (8 shadows) and the rule-based attack, as `experiment compare`
    writes it (results.sqlite, report.md, plots)."""
    from facebone.cli import main

    folder = tmp_path_factory.mktemp("results") / "study"
    argv = ["experiment", "compare", "--data", str(lfw_root), "--cache", str(cache_dir)]
    argv += ["--out", str(folder), "--defenses", "none,cosine", "--regimes", "leaking"]
    argv += ["--leaking-seeds", "0,1", "--attacks", "lira-online,rule-based", "--shadows", "8"]
    assert main([*argv, "--canaries", "0", "--json"]) == 0
    return folder


@pytest.fixture(scope="module")
def verifying(demo_workdir, lfw_root) -> DemoConfig:
    return DemoConfig(model=demo_workdir / "defended", default_model=True, data=lfw_root)


@pytest.mark.slow
def test_about_shows_the_diagram_and_the_verdict(results_dir):
    app = open_page("about", DemoConfig(results=results_dir))
    assert "predictor" in app.get("graphviz_chart")[0].proto.spec
    assert "cosine" in app.success[0].value and "undefended" not in app.success[0].value
    # The undefended system by a name that cannot be read as "no system".
    assert "Missing the goal: `undefended`" in texts(app.markdown)
    assert "canary TPR at 1% FPR" in app.caption[0].value  # the whole goal, as the README

    bare = open_page("about", DemoConfig())
    assert "--results" in bare.info[0].value


def pick(app: AppTest, side: str, person: str, image: str) -> None:
    app.radio(key=f"{side}-source").set_value("From the data").run()
    app.selectbox(key=f"{side}-person").set_value(person).run()
    app.selectbox(key=f"{side}-image").set_value(image).run()


def test_verification_from_the_data(verifying):
    app = open_page("verification", verifying)
    assert "default system" in app.info[0].value
    pick(app, "first", "Colin_Powell", POWELL[0])
    pick(app, "second", "Colin_Powell", POWELL[1])
    assert not app.exception and app.success[0].value.startswith("Same person")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert float(metrics["Probability"]) > 0.5 and metrics["Threshold"] == "0.50"
    assert metrics["Time"].endswith(" ms") and metrics["Answered by"] == "sface"
    pick(app, "second", "Tony_Blair", BLAIR)
    assert app.warning[0].value.startswith("Different people")
    # Aligned 112 x 112 crops of what the model saw, one per photo.
    assert len(app.get("image")) >= 2


def test_verification_people_filter(verifying):
    app = open_page("verification", verifying)
    app.radio(key="first-source").set_value("From the data").run()
    everyone = app.selectbox(key="first-person").options
    app.radio(key="first-group").set_value("training").run()
    training = app.selectbox(key="first-person").options
    app.radio(key="first-group").set_value("test").run()
    test = app.selectbox(key="first-person").options
    assert 0 < len(training) < len(everyone) and 0 < len(test) < len(everyone)
    assert not set(training) & set(test)


def upload(app: AppTest, side: str, name: str, data: bytes) -> None:
    app.file_uploader(key=f"{side}-upload").set_value((name, data, JPEG)).run()


def test_verification_uploads_and_camera(verifying, lfw_root):
    app = open_page("verification", verifying)
    upload(app, "first", "a.jpg", (lfw_root / POWELL[0]).read_bytes())
    assert "Give two photos" in app.info[-1].value
    app.radio(key="second-source").set_value("Camera").run()
    app.camera_input(key="second-camera").set_value(
        ("shot.jpg", (lfw_root / POWELL[1]).read_bytes(), JPEG)
    ).run()
    assert not app.exception and app.success[0].value.startswith("Same person")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: b"GIF89a? no, just text", "not an image file"),
        (lambda root: no_face(), "no face found"),
        (lambda root: too_many_pixels(), "20 megapixels"),
    ],
)
def test_verification_bad_uploads_get_a_message(verifying, lfw_root, make, message):
    app = open_page("verification", verifying)
    upload(app, "first", "bad.jpg", make(lfw_root))
    upload(app, "second", "b.jpg", (lfw_root / BLAIR).read_bytes())
    assert not app.exception
    assert message in app.error[0].value and not app.success and not app.warning


def test_verification_several_faces_the_person_picks(verifying, lfw_root):
    app = open_page("verification", verifying)
    upload(app, "first", "two.jpg", two_faces(lfw_root))
    upload(app, "second", "blair.jpg", (lfw_root / BLAIR_OTHER).read_bytes())
    choice = app.radio(key="first-face")
    assert choice.options == ["face 1", "face 2"]
    decisions = set()
    for index in range(2):
        app.radio(key="first-face").set_value(index).run()
        decisions.add("same" if app.success else "different")
    # Blair matches one face of the photo, Powell the other.
    assert decisions == {"same", "different"}


@pytest.fixture(scope="module")
def attacking(demo_workdir, lfw_root, cache_dir) -> DemoConfig:
    return DemoConfig(
        data=lfw_root,
        workdir=demo_workdir,
        cache=cache_dir,
        attacks=("rule-based", "lira"),
        n_shadows=2,
    )


def verdict_table(app: AppTest):
    table = app.dataframe[0].value
    assert list(table["attack"]) == ["rule-based", "lira"]
    assert {"undefended: says", "defended: says", "undefended: score"} <= set(table.columns)
    return table


def test_membership_member_and_nonmember_pairs(attacking):
    app = open_page("membership", attacking)
    assert not app.exception
    assert "**member**" in app.info[0].value
    table = verdict_table(app)
    assert all(said.endswith(("(right)", "(wrong)")) for said in table["undefended: says"])
    assert {metric.label for metric in app.metric} == {
        "undefended system: P(same)",
        "defended system: P(same)",
    }
    app.radio[0].set_value("A non-member pair (never seen)").run()
    assert "**non-member**" in app.info[0].value
    verdict_table(app)


def test_membership_uploaded_pair(attacking, lfw_root):
    from facebone.app.lab import demo_pairs

    member = demo_pairs(lfw_root).members[0]
    app = open_page("membership", attacking)
    app.radio[0].set_value("Upload two photos").run()
    for n, image in ((1, member.image1), (2, member.image2)):
        app.file_uploader(key=f"mi-{n}").set_value(("x.jpg", (lfw_root / image).read_bytes(), JPEG))
    app.radio[1].set_value("the same person" if member.label else "different people").run()
    assert not app.exception and "**member**" in app.info[0].value
    verdict_table(app)
    app.file_uploader(key="mi-2").set_value(("n.jpg", no_face(), JPEG)).run()
    assert "no face found" in app.error[0].value


@pytest.mark.slow
def test_report_plots_the_frontier(results_dir):
    app = open_page("report", DemoConfig(results=results_dir))
    assert not app.exception
    chart = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert "strongest attack AUC" in json.dumps(chart)
    # One point per defense in the one regime run, read from the study's results store,
    # under readable column titles.
    points = app.dataframe[0].value
    assert len(points) == 2 and set(points["system"]) == {"undefended", "cosine"}
    assert "attack_auc" not in points.columns and "meets the goal" in points.columns
    assert "# FaceBone defense comparison" in texts(app.markdown)
    # The report's plots: ROC curves at both levels; its frontier is the chart above.
    images = [image.proto.imgs[0].caption for image in app.get("image")]
    assert len(images) == 2 and not any("frontier" in caption for caption in images)


def test_report_without_frontier_and_with_damage(tmp_path):
    (tmp_path / "report.md").write_text("# Leakage\n")
    Image.new("RGB", (32, 32)).save(tmp_path / "leakage-heatmap.png")
    app = open_page("report", DemoConfig(results=tmp_path))
    assert not app.get("vega_lite_chart") and "# Leakage" in texts(app.markdown)
    (tmp_path / "results.sqlite").write_bytes(b"not a database")
    damaged = open_page("report", DemoConfig(results=tmp_path))
    assert "cannot be read" in damaged.error[0].value and not damaged.exception
    with pytest.raises(FaceBoneError, match="cannot be read as study results"):
        read_results(tmp_path)


@pytest.mark.slow
def test_inversion_page_only_with_inversion_results(results_dir, tmp_path):
    assert [page.title for page in demo_pages(DemoConfig(results=results_dir))] == [
        "About",
        "Face verification",
        "Membership inference",
        "Privacy report",
    ]
    grid = np.zeros((64, 128, 3), dtype=np.uint8)
    Image.fromarray(grid).save(tmp_path / "inversion-grid.png")
    (tmp_path / "inversion-metrics.json").write_text(json.dumps({"sar_type1": 0.4}))
    config = DemoConfig(results=tmp_path)
    assert demo_pages(config)[-1].title == "Model inversion"
    app = open_page("inversion", config)
    assert len(app.get("image")) == 1 and app.json[0].value == '{"sar_type1": 0.4}'


def test_demo_command_refuses_bad_options(capsys, tmp_path, lfw_root):
    from facebone.cli import main

    assert main(["demo"]) == 2
    assert "give --model DIR, or --data DIR" in capsys.readouterr().err
    assert main(["demo", "--data", str(lfw_root), "--results", str(tmp_path / "none")]) == 2
    assert "--results" in capsys.readouterr().err
    assert main(["demo", "--model", str(tmp_path)]) == 2
    assert "not a FaceBone model directory" in capsys.readouterr().err
