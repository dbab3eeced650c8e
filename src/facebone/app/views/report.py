"""Privacy report: an experiment results folder's frontier, tables and plots."""

import altair as alt
import streamlit as st

from facebone.app.config import DemoConfig
from facebone.app.results import FrontierPoint, ResultsFolder, read_results
from facebone.errors import FaceBoneError

GOAL_ACCURACY = 0.99
GOAL_AUC = 0.55


def render(config: DemoConfig) -> None:
    st.title("Privacy report")
    if config.results is None:
        st.info(
            "No results folder: run a study (`facebone study run configs/quick.toml`, or "
            "`facebone experiment compare --data DIR --out RESULTS`) and start the demo with "
            "`--results` and its output folder."
        )
        return
    try:
        results = read_results(config.results)
    except FaceBoneError as error:
        st.error(str(error))
        return
    if results.frontier:
        _frontier(results.frontier)
    if results.report is None and not results.plots and not results.frontier:
        st.warning(f"{config.results} holds no results.sqlite, report.md or plots.")
        return
    _plots(results)
    if results.report is not None:
        with st.expander("The full report (report.md)", expanded=not results.frontier):
            st.markdown(results.report)


def _frontier(points: list[FrontierPoint]) -> None:
    st.subheader("Privacy-utility frontier")
    st.caption(
        "Each defense's accuracy against the strongest attack's AUC; up and to the left is "
        f"better. The goal: accuracy >= {GOAL_ACCURACY}, AUC <= {GOAL_AUC} (dashed)."
    )
    rows = [point.__dict__ for point in points]
    base = alt.Chart(alt.Data(values=rows))
    dots = base.mark_point(filled=True, size=90).encode(
        x=alt.X("attack_auc:Q", title="strongest attack's AUC", scale=alt.Scale(zero=False)),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(zero=False)),
        color=alt.Color("meets_goal:N", title="meets the goal"),
        shape=alt.Shape("regime:N", title="regime"),
        tooltip=["defense:N", "regime:N", "accuracy:Q", "attack_auc:Q", "meets_goal:N"],
    )
    labels = base.mark_text(align="left", dx=7, fontSize=11).encode(
        x="attack_auc:Q", y="accuracy:Q", text="defense:N"
    )
    goal_x = (
        alt.Chart(alt.Data(values=[{"auc": GOAL_AUC}]))
        .mark_rule(strokeDash=[4, 4])
        .encode(x="auc:Q")
    )
    goal_y = (
        alt.Chart(alt.Data(values=[{"acc": GOAL_ACCURACY}]))
        .mark_rule(strokeDash=[4, 4])
        .encode(y="acc:Q")
    )
    chart = (dots + labels + goal_x + goal_y).properties(height=420)
    st.altair_chart(chart, width="stretch")
    st.dataframe(rows, hide_index=True)


def _plots(results: ResultsFolder) -> None:
    if results.plots:
        st.subheader("Plots")
        for plot in results.plots:
            st.image(str(plot), caption=plot.name)
