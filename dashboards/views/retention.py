"""Retention: the weekly cohort heatmap."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Retention")
st.caption("Cohort: the week (Monday, UTC) of a user's first event. A cell: the share of the cohort active in that "
           f"week after. Cohorts starting {f.label}; filter used: user cohorts.")
data = ui.page_data("retention", f)
ret = data["retention"]
if ret.is_empty():
    ui.no_data("cohorts", ui.HOW_FEED)
    st.stop()

ret = ret.with_columns(week_of=ret["cohort"].dt.strftime("%Y-%m-%d"))  # a label, not a timestamp, on the axis
heat = alt.Chart(ret).mark_rect().encode(
    x=alt.X("weeks_since:O", title="weeks since first week"), y=alt.Y("week_of:O", title="cohort (week of)", sort="descending"),
    color=alt.Color("retained:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=alt.Legend(format="%")),
    tooltip=["week_of:N", "weeks_since:O", "cohort_users:Q", "active_users:Q", alt.Tooltip("retained:Q", format=".1%")])
labels = alt.Chart(ret).mark_text(baseline="middle").encode(
    x="weeks_since:O", y=alt.Y("week_of:O", sort="descending"), text=alt.Text("retained:Q", format=".0%"),
    color=alt.condition("datum.retained > 0.5", alt.value("white"), alt.value("black")))
st.altair_chart(heat + labels, width="stretch")
ui.table("Retention by cohort and week", ret.drop("week_of"), "retention.csv", empty="No cohorts in this period.")
