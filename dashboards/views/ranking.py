"""Ranking: ranker versions with their offline metrics over time, online engagement by version."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Ranking")
st.caption(f"Online: {f.label} (UTC). Filters used here: dates, ranker versions (online engagement).")
data = ui.page_data("ranking", f)
versions, online = data["versions"], data["online"]
if versions.is_empty() and online.is_empty():
    ui.no_data("ranker version or ranked impression", "Train one with `kinora ranking train` or the ranking-retrain "
               "flow (`make demo` does), then refresh the analytics.")
    st.stop()

if not versions.is_empty():
    prod = versions.filter(versions["in_production"])
    st.metric("In production", prod["version"][0] if prod.height else "none")
    st.subheader("Offline NDCG@10 by version, with the baselines of the same run")
    long = versions.select("created_at", "version", "ndcg10", "lightgbm_ndcg10", "recent_popular_ndcg10",
                           "most_popular_ndcg10").unpivot(index=["created_at", "version"], variable_name="model",
                                                          value_name="ndcg")
    st.altair_chart(alt.Chart(long.drop_nulls("ndcg")).mark_line(point=True).encode(
        x=alt.X("created_at:T", title="trained"), y=alt.Y("ndcg:Q", scale=alt.Scale(zero=False), title="NDCG@10"),
        color=alt.Color("model:N", title=None), tooltip=["version", "model", alt.Tooltip("ndcg:Q", format=".4f")]),
        width="stretch")
ui.table("Ranker versions", versions, "ranker_versions.csv", empty="No ranker version trained yet.")

st.subheader("Online engagement by version")
if online.is_empty():
    st.info("No ranked impression in this period.")
else:
    st.altair_chart(alt.Chart(online).mark_line(point=True).encode(
        x=alt.X("day:T", title=None), y=alt.Y("view_rate:Q", axis=alt.Axis(format="%"), title="views per impression"),
        color=alt.Color("model_version:N", title=None),
        tooltip=["day:T", "model_version", "impressions", alt.Tooltip("view_rate:Q", format=".2%")]), width="stretch")
ui.table("Online engagement by version and day", online, "online_by_version.csv", empty="No ranked impression in this period.")
