"""The feed engagement metrics against the hand counts of the fixture (tests/dashboards/conftest.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboards import layer, metrics

WINDOW = dict(start=datetime(2026, 11, 20, tzinfo=UTC), end=datetime(2026, 11, 22, tzinfo=UTC), campaigns=[],
              versions=[], cohorts=[], top=50)


def test_feed_daily_matches_hand_counts(con):
    d1, d2 = layer.query(con, metrics.FEED_DAILY, **WINDOW).to_dicts()
    assert d1["day"] == date(2026, 11, 20)
    assert (d1["active_users"], d1["sessions"], d1["impressions"], d1["views"]) == (2, 2, 4, 4)
    assert d1["watch_s"] == pytest.approx(24.5)
    assert d1["completion_rate"] == pytest.approx(2 / 3)  # v1 twice (>= 9 s of 10), not v2 at 1 of 4 s; v3 unknown
    assert d1["like_rate"] == pytest.approx(1 / 4)  # the retried like counts once
    assert d1["share_rate"] == pytest.approx(1 / 4) and d1["remix_rate"] == 0 and d1["comment_rate"] == 0
    assert (d2["active_users"], d2["sessions"], d2["impressions"], d2["views"]) == (2, 2, 2, 1)
    assert d2["watch_s"] == pytest.approx(4.0) and d2["completion_rate"] == 1.0 and d2["remix_rate"] == 1.0


def test_feed_totals_over_the_window(con):
    t = layer.query(con, metrics.FEED_TOTALS, **(WINDOW | {"end": datetime(2026, 11, 25, tzinfo=UTC)})).row(0, named=True)
    assert (t["sessions"], t["views"]) == (4, 6)
    assert t["watch_hours"] == pytest.approx(30.5 / 3600)
    assert t["completion_rate"] == pytest.approx(3 / 5)  # + v2 4 of 4 s on the 21st, - v1 2 of 10 s on the 24th
    assert t["like_rate"] == pytest.approx(1 / 6) and t["remix_rate"] == pytest.approx(1 / 6)


def test_active_users_rolling_windows(con):
    rows = layer.query(con, metrics.ACTIVE_USERS, **(WINDOW | {"end": datetime(2026, 11, 26, tzinfo=UTC)})).to_dicts()
    assert [(r["day"], r["dau"], r["wau"], r["mau"]) for r in rows] == [
        (date(2026, 11, 20), 2, 2, 2), (date(2026, 11, 21), 2, 3, 3), (date(2026, 11, 22), 0, 3, 3),
        (date(2026, 11, 23), 0, 3, 3), (date(2026, 11, 24), 1, 3, 3)]


def test_engagement_by_position_attributes_to_the_latest_showing(con):
    rows = {r["position"]: r for r in layer.query(con, metrics.BY_POSITION, **WINDOW).to_dicts()}
    assert rows[0]["impressions"] == 4 and rows[1]["impressions"] == 2
    # position 0: u1-v1, u2-v1 and (day 2) u1-v2 viewed; one like, one share, one remix
    assert rows[0]["view_rate"] == pytest.approx(3 / 4)
    assert (rows[0]["like_rate"], rows[0]["share_rate"], rows[0]["remix_rate"]) == (0.25, 0.25, 0.25)
    # position 1: u1's day-1 view of v2 and u2's view of v3
    assert rows[1]["view_rate"] == 1.0 and rows[1]["like_rate"] == 0


def test_engagement_is_read_per_ranker_version(con):
    rows = layer.query(con, metrics.ONLINE_BY_VERSION, **WINDOW).to_dicts()
    by = {(r["day"], r["model_version"]): r for r in rows}
    rk1 = by[(date(2026, 11, 20), "rk-1")]  # requests A and B: 4 impressions, 4 views, 1 like
    assert rk1["impressions"] == 4 and rk1["view_rate"] == 1.0 and rk1["like_rate"] == 0.25
    assert by[(date(2026, 11, 21), "(by freshness)")]["impressions"] == 1  # C
    assert by[(date(2026, 11, 21), "(not ranked by Kinora)")]["view_rate"] == 0  # D: an app's own impression
    only = layer.query(con, metrics.BY_POSITION, **(WINDOW | {"versions": ["rk-1"]})).to_dicts()
    assert [(r["position"], r["impressions"]) for r in only] == [(0, 2), (1, 2)]


def test_engagement_by_cohort(con):
    (row,) = layer.query(con, metrics.BY_COHORT, **WINDOW).to_dicts()
    assert row["cohort"] == date(2026, 11, 16) and row["user_days"] == 4
    assert row["views_per_user_day"] == pytest.approx(5 / 4)


def test_weekly_retention(con):
    rows = layer.query(con, metrics.RETENTION_WEEKLY, **(WINDOW | {"start": datetime(2026, 11, 16, tzinfo=UTC),
                                                                   "end": datetime(2026, 11, 30, tzinfo=UTC)})).to_dicts()
    assert [(r["cohort"], r["weeks_since"], r["cohort_users"], r["active_users"]) for r in rows] == [
        (date(2026, 11, 16), 0, 3, 3), (date(2026, 11, 16), 1, 3, 1)]
    assert rows[1]["retained"] == pytest.approx(1 / 3)


def test_the_cohort_filter_narrows_the_feed_numbers(con):
    none = layer.query(con, metrics.FEED_DAILY, **(WINDOW | {"cohorts": [date(2026, 11, 23)]}))
    assert none.is_empty()
    same = layer.query(con, metrics.FEED_DAILY, **(WINDOW | {"cohorts": [date(2026, 11, 16)]}))
    assert same["views"].to_list() == [4, 1]


def test_no_data_yet_gives_empty_results(tmp_path):
    con = layer.connect(lake=tmp_path / "lake", root=tmp_path / "analytics")
    for page, queries in metrics.PAGES.items():
        out = layer.page_data(con, page, **WINDOW)
        assert set(out) == set(queries)
    assert layer.query(con, metrics.FEED_DAILY, **WINDOW).is_empty()
    assert layer.query(con, metrics.RETENTION_WEEKLY, **WINDOW).is_empty()
    assert layer.query(con, metrics.PROVENANCE_COVERAGE, **WINDOW)["published"].to_list() == [0]


def test_raw_query_agrees_with_the_rollups(fixture_home):
    raw = layer.connect(lake=fixture_home["lake"], root=fixture_home["root"], raw=True)
    rows = {r["day"]: r for r in raw.sql(metrics.RAW_FEED_DAILY).pl().to_dicts()}
    assert (rows[date(2026, 11, 20)]["views"], rows[date(2026, 11, 20)]["likes"]) == (4, 1)  # deduplicated
    assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 15
