"""Streamlit entry point of `facebone demo`: the config from argv, then the pages."""

import importlib
import sys

import streamlit as st

from facebone.app.config import DemoConfig
from facebone.app.views import demo_pages

config = DemoConfig.from_argv(sys.argv[1:])
st.set_page_config(page_title="FaceBone", layout="wide")


def _page(module_name: str):
    module = importlib.import_module(f"facebone.app.views.{module_name}")

    def render() -> None:
        module.render(config)

    render.__name__ = module_name
    return render


pages = [
    st.Page(_page(page.module), title=page.title, url_path=page.url_path, default=index == 0)
    for index, page in enumerate(demo_pages(config))
]
st.navigation(pages).run()
