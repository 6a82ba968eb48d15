"""Overview: the headline numbers of the period, with their change against the period before."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Overview")
days = (f.end - f.start).days
st.caption(f"{f.label} (UTC), compared with the {days} days before.")
data = ui.page_data("overview", f)
periods = {r["period"]: r for r in data["overview"].to_dicts()}
cur, prev = periods["current"], periods["previous"]

if not (cur["views"] or cur["sessions"] or cur["requested"] or cur["verify_lookups"]):
    ui.no_data("engagement, generation or verification", ui.HOW_FEED)
    st.stop()

HEADLINES = [  # (column, label, format)
    ("avg_dau", "Daily active users (mean)", "{:,.1f}"), ("sessions", "Feed sessions", "{:,.0f}"),
    ("views", "Views", "{:,.0f}"), ("watch_hours", "Hours watched", "{:,.1f}"), ("like_rate", "Likes per view", "{:.1%}"),
    ("requested", "Generations requested", "{:,.0f}"), ("published", "Videos published", "{:,.0f}"),
    ("blocked_share", "Requests blocked (consent or rights)", "{:.1%}"), ("verify_lookups", "Provenance look-ups", "{:,.0f}"),
]


def _change(now, before) -> str | None:
    if now is None or before is None or before == 0:
        return None
    return f"{(now - before) / abs(before):+.1%}"


for i in range(0, len(HEADLINES), 5):
    for col, (key, label, fmt) in zip(st.columns(5), HEADLINES[i:i + 5]):
        value = cur[key]
        col.metric(label, "–" if value is None else fmt.format(value), delta=_change(value, prev[key]),
                   delta_color="inverse" if key == "blocked_share" else "normal")

daily = data["feed_daily"]
if not daily.is_empty():
    st.subheader("Active users and views per day")
    long = daily.select("day", "active_users", "views").unpivot(index="day", variable_name="measure", value_name="count")
    st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("day:T", title=None), y=alt.Y("count:Q", title=None), color=alt.Color("measure:N", title=None),
        tooltip=["day:T", "measure:N", "count:Q"]), width="stretch")
ui.table("Headline numbers", data["overview"], "overview.csv", empty="No numbers in this period.")
