"""The demo's enrolment and search page through Streamlit's AppTest, on real LFW photos."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from facebone.app.config import DemoConfig
from facebone.app.views import demo_pages
from facebone.cli import main
from web_images import BLAIR, BLAIR_OTHER, POWELL, no_face

STRANGER = "Gerhard_Schroeder/Gerhard_Schroeder_0006.jpg"
JPEG = "image/jpeg"


def _render(argv: list[str]) -> None:
    from facebone.app.config import DemoConfig
    from facebone.app.views import gallery

    gallery.render(DemoConfig.from_argv(argv))


@pytest.fixture
def config(demo_workdir, lfw_root, tmp_path) -> DemoConfig:
    """A new empty gallery of the demo's SFace system."""
    model, store = demo_workdir / "defended", tmp_path / "people.sqlite"
    assert main(["gallery", "create", "--store", str(store), "--model", str(model)]) == 0
    return DemoConfig(model=model, data=lfw_root, gallery=str(store))


def open_page(config: DemoConfig) -> AppTest:
    app = AppTest.from_function(_render, kwargs={"argv": config.to_argv()}, default_timeout=120)
    return app.run()


def search(app: AppTest, image: str) -> None:
    app.radio(key="probe-source").set_value("From the data").run()
    app.selectbox(key="probe-person").set_value(image.split("/")[0]).run()
    app.selectbox(key="probe-image").set_value(image).run()


def test_enrol_from_the_data_then_search(config):
    app = open_page(config)
    assert "subjects enrolled: 0" in app.caption[0].value
    app.radio(key="enrol-source").set_value("From the data").run()
    app.selectbox(key="enrol-person").set_value("Colin_Powell").run()
    app.multiselect(key="enrol-images").set_value([POWELL[0]]).run()
    app.text_input(key="enrol-name").set_value("Colin").run()
    app.button(key="enrol").click().run()
    assert not app.exception
    subject = re.fullmatch(r"Enrolled 1 photo\(s\) as subject ([0-9a-f]{32})", app.success[0].value)
    assert subject is not None
    search(app, POWELL[1])
    assert app.success[-1].value == f"Match: subject {subject[1]} (Colin)"
    search(app, STRANGER)
    assert app.warning[0].value.startswith("No match") and "score" not in app.warning[0].value


def test_enrol_uploads_and_bad_photos(config, lfw_root):
    app = open_page(config)
    photos = [(name, (lfw_root / name).read_bytes(), JPEG) for name in (BLAIR, BLAIR_OTHER)]
    app.file_uploader(key="enrol-upload").set_value(photos).run()
    app.button(key="enrol").click().run()
    assert app.success[0].value.startswith("Enrolled 2 photo(s) as subject ")
    app.file_uploader(key="enrol-upload").set_value([("blank.png", no_face(), "image/png")]).run()
    app.button(key="enrol").click().run()
    assert not app.exception and "blank.png: no face found" in app.error[0].value
    app.radio(key="probe-source").set_value("Upload").run()
    blair = (lfw_root / "Tony_Blair/Tony_Blair_0053.jpg").read_bytes()  # not enrolled
    app.file_uploader(key="probe-upload").set_value(("probe.jpg", blair, JPEG)).run()
    assert app.success[-1].value.startswith("Match: subject ")
    assert "subjects enrolled: 1" in open_page(config).caption[0].value


def test_the_page_is_listed_only_with_a_gallery(config):
    titles = [page.title for page in demo_pages(config)]
    assert "Enrolment and search" in titles
    assert "Enrolment and search" not in [page.title for page in demo_pages(DemoConfig())]
    assert "--gallery" in open_page(DemoConfig(model=config.model)).error[0].value


def test_demo_prepares_its_gallery(demo_workdir, tmp_path, capsys):
    """`demo --gallery` creates a missing SQLite gallery for the model, opens an existing
    one, and refuses one inside the model folder."""
    from facebone.cli.demo import _prepare_gallery
    from facebone.errors import FaceBoneError

    model, store = demo_workdir / "defended", tmp_path / "new.sqlite"
    _prepare_gallery(str(store), model, None)
    assert store.is_file() and "created an empty gallery" in capsys.readouterr().out
    _prepare_gallery(str(store), model, None)
    assert capsys.readouterr().out == ""
    with pytest.raises(FaceBoneError, match="inside --model"):
        _prepare_gallery(str(model / "g.sqlite"), model, None)
