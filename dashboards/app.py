"""Kinora analytics: one Streamlit app, a page per audience, every number from the semantic layer.

Run with ``kinora dashboard``. The sidebar's filters (dates, campaigns, ranker versions, user
cohorts) live here, in the entrypoint, so they carry across pages; each page reads them from
``st.session_state["filters"]`` and asks :mod:`dashboards.ui` for its queries' results.

The page scripts live in ``views/``, not ``pages/``: Streamlit treats a ``pages/`` folder next to
the entrypoint as an old-style multipage app and runs a page directly, without this file, when a
widget changes (measured: the filters vanished on the first sidebar change).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import ui

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Kinora analytics", layout="wide")
PAGES = [
    st.Page(HERE / "views" / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page(HERE / "views" / "feed.py", title="Feed engagement", icon=":material/play_circle:"),
    st.Page(HERE / "views" / "retention.py", title="Retention", icon=":material/grid_on:"),
    st.Page(HERE / "views" / "content.py", title="Content and creators", icon=":material/movie:"),
    st.Page(HERE / "views" / "campaigns.py", title="Campaigns", icon=":material/campaign:"),
    st.Page(HERE / "views" / "trust.py", title="Trust and safety", icon=":material/verified_user:"),
    st.Page(HERE / "views" / "ranking.py", title="Ranking", icon=":material/leaderboard:"),
]
st.session_state["filters"] = ui.sidebar()
st.navigation(PAGES).run()
