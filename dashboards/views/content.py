"""Content and creators: top videos and creators, remix chains, cameo usage."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Content and creators")
st.caption(f"{f.label} (UTC). Filter used here: dates.")
data = ui.page_data("content", f)
if all(frame.is_empty() for frame in data.values()):
    ui.no_data("videos, views or cameo uses", ui.HOW_FEED)
    st.stop()

creators = data["top_creators"]
if not creators.is_empty():
    st.subheader("Top creators by views")
    st.altair_chart(alt.Chart(creators.head(20)).mark_bar().encode(
        x=alt.X("views:Q"), y=alt.Y("creator_id:N", sort="-x", title=None),
        tooltip=["creator_id", "views", "likes", "remixes", alt.Tooltip("like_rate:Q", format=".1%")]), width="stretch")
ui.table("Top videos", data["top_videos"], "top_videos.csv", empty="No video was viewed in this period.")
ui.table("Top creators", creators, "top_creators.csv", empty="No creator's video was viewed in this period.")
ui.table("Remix chains", data["remix_chains"], "remix_chains.csv", empty="No remix was published in this period.")
ui.table("Cameo usage", data["cameo_usage"], "cameo_usage.csv", empty="No cameo is registered yet.")
