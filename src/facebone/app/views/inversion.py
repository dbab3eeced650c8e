"""Model inversion: originals beside the faces an attacker reconstructed from embeddings.

Shown only when the results folder holds inversion results (files named *inversion*): the
grid images that `facebone attack inversion` writes, and their metrics.
"""

import streamlit as st

from facebone.app.config import DemoConfig
from facebone.app.results import read_results
from facebone.errors import FaceBoneError


def render(config: DemoConfig) -> None:
    st.title("Model inversion")
    st.markdown(
        "A leaked template (embedding) can give a face back. Each row: the original photo, "
        "then what the attacker reconstructed from its embedding alone."
    )
    if config.results is None:
        st.info("No results folder: start the demo with --results DIR.")
        return
    try:
        results = read_results(config.results)
    except FaceBoneError as error:
        st.error(str(error))
        return
    if not results.inversion_plots:
        st.info(f"{config.results} holds no model-inversion results.")
        return
    for plot in results.inversion_plots:
        st.image(str(plot), caption=plot.name)
    for name, metrics in results.inversion_metrics.items():
        st.subheader(name)
        st.json(metrics)
