"""Privacy report: an experiment results folder's frontier, tables and plots."""

import altair as alt
import streamlit as st

from facebone.app.config import DemoConfig
from facebone.app.results import FrontierPoint, ResultsFolder, read_results
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import display_name
from facebone.experiments.verdict import GOAL, goal_statement

# The report's frontier figure: the page draws its own, interactive, instead.
REPORT_FRONTIER = "-frontier.png"
# Column titles of the frontier table.
COLUMNS = {
    "defense": "system",
    "regime": "regime",
    "accuracy": "accuracy",
    "attack_auc": "strongest attack AUC",
    "meets_goal": "meets the goal",
}


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
    _plots(results, skip_frontier=bool(results.frontier))
    if results.report is not None:
        with st.expander("The full report (report.md)", expanded=not results.frontier):
            st.markdown(results.report)


def _frontier(points: list[FrontierPoint]) -> None:
    st.subheader("Privacy-utility frontier")
    st.caption(
        "Each system's accuracy against the strongest attack's AUC; up and to the left is "
        f"better. Dashed: the goal's accuracy and AUC. The whole goal: {goal_statement()}."
    )
    rows = [
        {COLUMNS[key]: value for key, value in point.__dict__.items()}
        | {"system": display_name(point.defense)}
        for point in points
    ]
    base = alt.Chart(alt.Data(values=rows))
    x, y = COLUMNS["attack_auc"], COLUMNS["accuracy"]
    dots = base.mark_point(filled=True, size=90).encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", scale=alt.Scale(zero=False)),
        color=alt.Color(f"{COLUMNS['meets_goal']}:N"),
        shape=alt.Shape("regime:N"),
        tooltip=[f"{name}:{'Q' if name in (x, y) else 'N'}" for name in COLUMNS.values()],
    )
    labels = base.mark_text(align="left", dx=7, fontSize=11).encode(
        x=f"{x}:Q", y=f"{y}:Q", text="system:N"
    )
    goal_x = (
        alt.Chart(alt.Data(values=[{"auc": GOAL["max_auc"]}]))
        .mark_rule(strokeDash=[4, 4])
        .encode(x="auc:Q")
    )
    goal_y = (
        alt.Chart(alt.Data(values=[{"acc": GOAL["min_accuracy"]}]))
        .mark_rule(strokeDash=[4, 4])
        .encode(y="acc:Q")
    )
    chart = (dots + labels + goal_x + goal_y).properties(height=420)
    st.altair_chart(chart, width="stretch")
    st.dataframe(rows, hide_index=True)


def _plots(results: ResultsFolder, skip_frontier: bool) -> None:
    plots = [p for p in results.plots if not (skip_frontier and p.name.endswith(REPORT_FRONTIER))]
    if plots:
        st.subheader("Plots")
        for plot in plots:
            st.image(str(plot), caption=plot.name)
