"""About: what FaceBone is, the threat model, how each defense works, and the verdict."""

import streamlit as st

from facebone.app.config import DemoConfig
from facebone.app.results import read_results
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import display_name
from facebone.experiments.verdict import goal_statement

DIAGRAM = """
digraph {
  rankdir=TB; nodesep=0.5; ranksep=0.35;
  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname=Helvetica, fontsize=12];
  photos [label="two photos"];
  detect [label="detect + align (YuNet, five landmarks)"];
  sface [label="SFace embedder"]; dlib [label="dlib ResNet embedder"];
  draw [label="multi-backbone: one backbone drawn per query", fillcolor="#fff4d6"];
  predictor [label="predictor: cosine, nn, or nn trained with DP-SGD"];
  decision [label="P(same) >= 0.5: same person / different people", fillcolor="#e3f5e1"];
  photos -> detect; detect -> sface; detect -> dlib; sface -> draw; dlib -> draw;
  draw -> predictor [label=" embedding pair", fontsize=10]; predictor -> decision;
}
"""

TEXT = """
FaceBone is a face-verification system (are these two photos the same person?) together with
the privacy attacks that threaten it and the defenses against them, measured on the same
identity-disjoint splits of LFW.

**Threat model.** The attacker queries the system as a black box with pairs of photos and
sees the probability (or only the decision). It knows how the system was trained but not its
seed or its training pairs, and it trains *shadow* systems on people of its own. It asks:
was this pair, or this person, in the predictor's training data (membership inference)?

**Defenses.**
- *Multiple backbones* (FaceBone's own): the predictor is trained on embeddings of several
  backbones and each query is answered through one drawn at random, so the same pair never
  gets one deterministic answer.
- *DP-SGD*: the nn predictor is trained with differential privacy (Opacus), noise bounding
  what any one training pair can change.
- *Cosine predictor*: a calibrated threshold on cosine similarity, one parameter per
  backbone, with almost nothing to memorise.
"""


def render(config: DemoConfig) -> None:
    st.title("FaceBone: privacy of face recognition")
    st.markdown(TEXT)
    st.subheader("How a query is answered")
    st.graphviz_chart(DIAGRAM)
    st.subheader("Verdict")
    if config.results is None:
        st.info(
            "No results folder: run a study (`facebone study run configs/quick.toml`) and "
            "start the demo with `--results` and its output folder to see which defenses hold."
        )
        return
    try:
        verdict = read_results(config.results).verdict()
    except FaceBoneError as error:
        st.error(str(error))
        return
    if not verdict:
        st.info(f"{config.results} holds no privacy-utility frontier to judge from.")
        return
    holding = [f"`{display_name(name)}`" for name, held in verdict.items() if held]
    failing = [f"`{display_name(name)}`" for name, held in verdict.items() if not held]
    if holding:
        st.success(f"Systems that meet the goal in every regime: {', '.join(holding)}")
    else:
        st.warning("No system meets the goal in every regime.")
    if failing:
        st.markdown(f"Missing the goal: {', '.join(failing)}")
    st.caption(f"Goal: {goal_statement()}.")
