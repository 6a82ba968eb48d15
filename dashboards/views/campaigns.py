"""Campaigns: the funnel per campaign, stage latencies, compute by device, failures with reasons."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Campaigns")
st.caption(f"{f.label} (UTC). Filters used here: dates, campaigns.")
data = ui.page_data("campaigns", f)
funnel = data["funnel"]
if funnel.is_empty():
    ui.no_data("campaign or API request", ui.HOW_CAMPAIGNS)
    st.stop()

STAGES = ["requested", "blocked_consent", "blocked_rights", "failed", "generated", "published"]
for col, stage in zip(st.columns(len(STAGES)), STAGES):
    col.metric(stage.replace("_", " ").capitalize(), f"{int(funnel[stage].sum()):,}")

st.subheader("Funnel per campaign")
long = funnel.select("campaign", *STAGES).unpivot(index="campaign", variable_name="stage", value_name="requests")
st.altair_chart(alt.Chart(long).mark_bar().encode(
    x=alt.X("stage:N", sort=STAGES, title=None), y=alt.Y("requests:Q"), color=alt.Color("campaign:N"),
    xOffset="campaign:N", tooltip=["campaign", "stage", "requests"]), width="stretch")
ui.table("Funnel", funnel, "campaign_funnel.csv", empty="No campaign in this period.")
ui.table("Seconds per stage (published requests)", data["stages"], "stage_seconds.csv",
         empty="No published request in this period.")
ui.table("Generation compute by device", data["devices"], "device_seconds.csv", empty="No clip was generated in this period.")
ui.table("Refused and failed requests", data["refusals"], "refusals.csv", empty="None in this period.")
ui.table("Published videos", data["videos"], "published_videos.csv", empty="No video published in this period.")
