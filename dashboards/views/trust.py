"""Trust and safety: consent blocks and revocations, rights blocks, takedowns, provenance, verify look-ups."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui

f: ui.Filters = st.session_state["filters"]
st.title("Trust and safety")
st.caption(f"{f.label} (UTC). Filter used here: dates.")
data = ui.page_data("trust", f)
daily, cover = data["daily"], data["provenance"].row(0, named=True)
if daily.is_empty() and not cover["published"]:
    ui.no_data("consent or rights decisions, takedowns, published videos or look-ups", ui.HOW_CAMPAIGNS)
    st.stop()

cols = st.columns(5)
for col, (key, label) in zip(cols, [("consent_blocks", "Consent blocks"), ("rights_blocks", "Rights blocks"),
                                    ("revocations", "Cameo revocations"), ("takedowns", "Takedowns"),
                                    ("verify_lookups", "Verify look-ups")]):
    col.metric(label, f"{int(daily[key].sum()) if not daily.is_empty() else 0:,}")
st.metric("Provenance coverage of published videos (invisible mark and signed C2PA)",
          "–" if cover["coverage"] is None else f"{cover['coverage']:.1%}",
          help=f"{cover['both_stamps']} of {cover['published']} videos published in the period")

if not daily.is_empty():
    st.subheader("Per day")
    long = daily.unpivot(index="day", variable_name="measure", value_name="count")
    st.altair_chart(alt.Chart(long).mark_bar().encode(
        x=alt.X("day:T", title=None), y=alt.Y("count:Q"), color=alt.Color("measure:N", title=None),
        tooltip=["day:T", "measure:N", "count:Q"]), width="stretch")
ui.table("Trust and safety per day", daily, "trust_daily.csv", empty="Nothing in this period.")
ui.table("Rights blocks by holder and work", data["rights_blocks"], "rights_blocks.csv", empty="No rights block in this period.")
ui.table("Takedowns by cause", data["takedowns"], "takedowns.csv", empty="No takedown in this period.")
ui.table("Provenance coverage", data["provenance"], "provenance_coverage.csv", empty="No video published in this period.")
ui.table("Verify look-ups by verdict", data["verdicts"], "verify_verdicts.csv", empty="No look-up in this period.")
