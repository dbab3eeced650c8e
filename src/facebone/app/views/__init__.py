"""The demo's pages, one module each with `render(config)`; `demo_pages` lists those to show."""

from typing import NamedTuple

from facebone.app.config import DemoConfig
from facebone.app.results import read_results
from facebone.errors import FaceBoneError


class DemoPage(NamedTuple):
    title: str
    url_path: str
    module: str


def demo_pages(config: DemoConfig) -> list[DemoPage]:
    """About, verification, membership, report; enrolment and search only with a gallery;
    model inversion only when results hold it."""
    pages = [
        DemoPage("About", "about", "about"),
        DemoPage("Face verification", "verification", "verification"),
        *([DemoPage("Enrolment and search", "gallery", "gallery")] if config.gallery else []),
        DemoPage("Membership inference", "membership", "membership"),
        DemoPage("Privacy report", "report", "report"),
    ]
    if config.results is not None and _has_inversion(config):
        pages.append(DemoPage("Model inversion", "inversion", "inversion"))
    return pages


def _has_inversion(config: DemoConfig) -> bool:
    try:
        return bool(read_results(config.results).inversion_plots)
    except FaceBoneError:
        return False
