"""What every dashboard page shares: the filters, the cached queries, tables with a CSV download,
and the plain sentence a page shows when it has no data yet.

Numbers come only from :data:`dashboards.metrics.PAGES` through :func:`dashboards.layer.page_data`;
pages lay them out and never build SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import streamlit as st

from dashboards import layer, metrics
from kinora.settings import Settings, load_settings


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices; they carry across pages (the widgets live in the entrypoint)."""

    start: datetime
    end: datetime  # exclusive: midnight after the last chosen day
    campaigns: tuple[str, ...]
    versions: tuple[str, ...]
    cohorts: tuple[date, ...]

    def params(self, top: int) -> dict:
        return dict(start=self.start, end=self.end, campaigns=list(self.campaigns), versions=list(self.versions),
                    cohorts=list(self.cohorts), top=top)

    @property
    def label(self) -> str:
        return f"{self.start.date()} to {(self.end - timedelta(days=1)).date()}"


def settings() -> Settings:
    return load_settings()  # cheap; built per run so a changed KINORA_* takes effect


def stamp(s: Settings) -> str:
    """Changes whenever the layer is refreshed: part of every cache key."""
    when = layer.refreshed_at(s.analytics_dir)
    return when.isoformat() if when else "never"


@st.cache_data(ttl=300, show_spinner=False)
def _page(lake: str, root: str, threads: int | None, page: str, params: tuple, _stamp: str) -> dict[str, pl.DataFrame]:
    con = layer.connect(lake=lake, root=root, threads=threads)
    try:
        return layer.page_data(con, page, **{k: list(v) if isinstance(v, tuple) else v for k, v in params})
    finally:
        con.close()


@st.cache_data(ttl=300, show_spinner=False)
def _choices(lake: str, root: str, _stamp: str) -> dict:
    con = layer.connect(lake=lake, root=root)
    try:
        span = layer.query(con, metrics.DATA_RANGE).row(0)
        return {"campaigns": layer.query(con, metrics.CAMPAIGNS)["campaign"].to_list(),
                "versions": layer.query(con, metrics.MODEL_VERSION_CHOICES)["model_version"].to_list(),
                "cohorts": layer.query(con, metrics.COHORT_CHOICES)["cohort"].to_list(),
                "first_day": span[0], "last_day": span[1]}
    finally:
        con.close()


def page_data(page: str, f: Filters) -> dict[str, pl.DataFrame]:
    s = settings()
    params = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in f.params(s.dashboard.top_n).items()))
    out = _page(s.lake_location, str(s.analytics_dir), s.dashboard.duckdb_threads, page, params, stamp(s))
    return {k: v.clone() for k, v in out.items()}


def sidebar() -> Filters:
    """Draw the filters (and the refresh control) in the sidebar; return the current choices."""
    s = settings()
    choices = _choices(s.lake_location, str(s.analytics_dir), stamp(s))
    last = choices["last_day"] or date.today()
    with st.sidebar:
        st.header("Filters")
        default = (max(choices["first_day"] or last, last - timedelta(days=29)), last)
        picked = st.date_input("Dates (UTC)", value=default, key="dates")
        start_day, end_day = picked if isinstance(picked, tuple) and len(picked) == 2 else default
        campaigns = st.multiselect("Campaigns", choices["campaigns"], key="campaigns",
                                   help="Campaign pages and the overview's generation numbers.")
        versions = st.multiselect("Ranker versions", choices["versions"], key="versions",
                                  help="Engagement by position and the ranking page.")
        cohorts = st.multiselect("User cohorts (first week)", choices["cohorts"], key="cohorts",
                                 help="Feed engagement, retention and the overview's feed numbers.")
        _freshness(s)
    start = datetime.combine(start_day, time.min, tzinfo=timezone.utc)
    end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=timezone.utc)
    return Filters(start, end, tuple(campaigns), tuple(versions), tuple(cohorts))


def _freshness(s: Settings) -> None:
    when = layer.refreshed_at(s.analytics_dir)
    if when is None:
        st.caption("The analytics have never been refreshed.")
    else:
        age = (datetime.now(timezone.utc) - when).total_seconds()
        text = f"Data as of {when:%Y-%m-%d %H:%M} UTC"
        (st.warning if age > s.dashboard.stale_after_s else st.caption)(
            text + (" (stale: is the analytics-refresh flow running?)" if age > s.dashboard.stale_after_s else ""))
    if st.button("Refresh now", help="Roll up what the lake and the catalog hold now (kinora analytics refresh)."):
        with st.spinner("Refreshing the analytics..."):
            report = layer.refresh_all(s)
        st.cache_data.clear()
        st.toast(report.line())


def table(title: str, frame: pl.DataFrame, csv_name: str, *, empty: str) -> None:
    """A section with a table and its CSV download, or a plain sentence when it is empty."""
    st.subheader(title)
    if frame.is_empty():
        st.info(empty)
        return
    st.dataframe(frame, width="stretch", hide_index=True)
    st.download_button(f"Download {title.lower()} (CSV)", frame.write_csv(), csv_name, "text/csv", key=f"csv-{csv_name}")


def no_data(what: str, how: str) -> None:
    st.info(f"No {what} yet in this period. {how}")


HOW_FEED = ("Engagement arrives through `POST /v1/events`, `kinora events import`, or the feed's own impressions; "
            "`make demo` loads simulated engagement. Then `kinora analytics refresh` (or the analytics-refresh flow).")
HOW_CAMPAIGNS = "Run `kinora demo` or `kinora campaign run FILE`, then refresh the analytics."
