"""Feed engagement: active users, sessions, views, watch time and rates; by day, by position, by cohort."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Feed engagement")
st.caption(f"{f.label} (UTC). Filters used here: dates, user cohorts; ranker versions for engagement by position.")
data = ui.page_data("feed", f)
daily = data["feed_daily"]
if daily.is_empty():
    ui.no_data("feed engagement", ui.HOW_FEED)
    st.stop()

totals = data["totals"].row(0, named=True)
cols = st.columns(5)
for col, (key, label, fmt) in zip(cols, [("sessions", "Sessions", "{:,}"), ("views", "Views", "{:,}"),
                                         ("watch_hours", "Hours watched", "{:,.1f}"),
                                         ("completion_rate", "Completion rate", "{:.1%}"),
                                         ("like_rate", "Likes per view", "{:.1%}")]):
    col.metric(label, "–" if totals[key] is None else fmt.format(totals[key]))

st.subheader("Daily, weekly and monthly active users")
active = data["active_users"].unpivot(index="day", variable_name="measure", value_name="users")
st.altair_chart(alt.Chart(active).mark_line(point=True).encode(
    x=alt.X("day:T", title=None), y=alt.Y("users:Q"), color=alt.Color("measure:N", title=None, sort=["dau", "wau", "mau"]),
    tooltip=["day:T", "measure:N", "users:Q"]), width="stretch")

st.subheader("Rates per view, by day")
rates = daily.select("day", "like_rate", "share_rate", "remix_rate", "comment_rate", "completion_rate").unpivot(
    index="day", variable_name="rate", value_name="value")
st.altair_chart(alt.Chart(rates).mark_line().encode(
    x=alt.X("day:T", title=None), y=alt.Y("value:Q", axis=alt.Axis(format="%"), title=None),
    color=alt.Color("rate:N", title=None), tooltip=["day:T", "rate:N", alt.Tooltip("value:Q", format=".2%")]),
    width="stretch")
ui.table("Engagement by day", daily, "feed_daily.csv", empty="No days in this period.")
ui.table("Active users by day", data["active_users"], "active_users.csv", empty="No days in this period.")

st.subheader("By feed position")
by_pos = data["by_position"]
if by_pos.is_empty():
    st.info("No impressions with positions in this period (or none for the chosen ranker versions).")
else:
    st.altair_chart(alt.Chart(by_pos).mark_bar().encode(
        x=alt.X("position:O"), y=alt.Y("view_rate:Q", axis=alt.Axis(format="%"), title="views per impression"),
        tooltip=["position:O", "impressions:Q", alt.Tooltip("view_rate:Q", format=".2%"),
                 alt.Tooltip("like_rate:Q", format=".2%")]), width="stretch")
ui.table("Engagement by position", by_pos, "by_position.csv", empty="No impressions in this period.")
ui.table("Engagement by user cohort", data["by_cohort"], "by_cohort.csv", empty="No cohorts in this period.")
