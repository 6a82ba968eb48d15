"""Kinora analytics: the campaign funnel and the published videos, read through DuckDB from the lake.

Run with ``kinora dashboard``. Every number on the page comes from a query in
``dashboards/metrics.py``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import altair as alt
import streamlit as st

from dashboards import metrics
from kinora.settings import load_settings

st.set_page_config(page_title="Kinora · Campaigns", layout="wide")


@st.cache_data(ttl=30)
def _load(lake_dir: str, start: datetime, end: datetime, campaigns: tuple[str, ...]):
    con = metrics.connect(lake_dir)
    params = dict(start=start, end=end, campaigns=list(campaigns))
    out = {
        "campaigns": metrics.query(con, metrics.CAMPAIGNS)["campaign"].to_list(),
        "funnel": metrics.query(con, metrics.CAMPAIGN_FUNNEL, **params),
        "stages": metrics.query(con, metrics.STAGE_SECONDS, **params),
        "refusals": metrics.query(con, metrics.REFUSALS, **params),
        "videos": metrics.query(con, metrics.PUBLISHED_VIDEOS, **params),
    }
    con.close()
    return out


def _table(title: str, frame, empty: str, csv_name: str) -> None:
    """A section with a table and its CSV download, or a plain sentence when it is empty."""
    st.subheader(title)
    if frame.is_empty():
        st.write(empty)
        return
    st.dataframe(frame, use_container_width=True, hide_index=True)
    st.download_button(f"Download {title.lower()} (CSV)", frame.write_csv(), csv_name, "text/csv")


settings = load_settings()  # cheap; built per run so a changed KINORA_* takes effect
st.title("Campaigns")
st.caption(f"Lake: {settings.lake_dir}")

today = date.today()
with st.sidebar:
    st.header("Filters")
    day_range = st.date_input("Dates", value=(today - timedelta(days=30), today), key="dates")
    start_day, end_day = (day_range if isinstance(day_range, tuple) and len(day_range) == 2 else (today - timedelta(days=30), today))
start = datetime.combine(start_day, time.min, tzinfo=timezone.utc)
end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=timezone.utc)

all_campaigns = _load(str(settings.lake_dir), start, end, ())["campaigns"]
with st.sidebar:
    chosen = st.multiselect("Campaigns", all_campaigns, key="campaigns")
data = _load(str(settings.lake_dir), start, end, tuple(chosen))

if data["funnel"].is_empty():
    st.info("No campaign has run yet in this period. Run `kinora demo` or `kinora campaign run FILE`, then reload.")
    st.stop()

funnel = data["funnel"]
totals = {c: int(funnel[c].sum()) for c in ("requested", "blocked_consent", "blocked_rights", "failed", "generated", "published")}
cols = st.columns(6)
for col, (label, value) in zip(cols, totals.items()):
    col.metric(label.replace("_", " ").capitalize(), value)

st.subheader("Funnel per campaign")
long = funnel.select("campaign", "requested", "blocked_consent", "blocked_rights", "failed", "generated", "published").unpivot(
    index="campaign", variable_name="stage", value_name="requests"
)
order = ["requested", "blocked_consent", "blocked_rights", "failed", "generated", "published"]
chart = alt.Chart(long.to_pandas()).mark_bar().encode(
    x=alt.X("stage:N", sort=order, title=None), y=alt.Y("requests:Q"), color=alt.Color("campaign:N"),
    xOffset="campaign:N", tooltip=["campaign", "stage", "requests"],
)
st.altair_chart(chart, use_container_width=True)
st.dataframe(funnel, use_container_width=True, hide_index=True)
st.download_button("Download funnel (CSV)", funnel.write_csv(), "campaign_funnel.csv", "text/csv")

st.subheader("Seconds per stage (mean, published requests)")
st.dataframe(data["stages"], use_container_width=True, hide_index=True)
_table("Refused and failed requests", data["refusals"], "None in this period.", "refusals.csv")
_table("Published videos", data["videos"], "No video published in this period.", "published_videos.csv")
