"""The feed engagement metrics against values counted by hand on a small lake.

Videos v1 (10 s) and v2 (4 s) are in the lake; v3's length is unknown.
Fri 20 Nov: u1 sees v1 (pos 0) and v2 (pos 1) in request A, watches v1 9.5 s and likes it
(the like arrives twice, from a retried batch), watches v2 1 s; u2 sees v1 (0) and v3 (1) in B,
watches v1 9 s, shares it, watches v3 5 s.
Sat 21 Nov: u1 sees v2 (0) in C, watches it 4 s and remixes it; u3 sees v1 (0) in D.
Tue 24 Nov (the next week): u2 watches v1 2 s.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dashboards import metrics
from kinora.stores.lake import Lake

D1 = datetime(2026, 11, 20, 10, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
D5 = D1 + timedelta(days=4)


def _ev(eid, ts, user, video, kind, batch="b1", watch=None, pos=None, req=None):
    return dict(event_id=eid, ts=ts, user_id=user, video_id=video, event_type=kind, watch_ms=watch, position=pos,
                request_id=req, batch_id=batch)


@pytest.fixture
def con(tmp_path):
    lake = Lake(tmp_path)
    lake.append("videos", [dict(video_id=v, request_id=f"r{v}", creator_id="c", campaign_id=None, prompt="p",
                                duration_ms=ms, width=256, height=256, model_family="ltx2", model_version="t",
                                c2pa_state="Valid", cameo_count=0, published_at=D1 - timedelta(days=1))
                           for v, ms in (("v1", 10_000), ("v2", 4_000))])
    m = lambda k: D1 + timedelta(minutes=k)  # noqa: E731
    lake.append("events", [
        _ev("e1", m(0), "u1", "v1", "impression", pos=0, req="A"), _ev("e2", m(0), "u1", "v2", "impression", pos=1, req="A"),
        _ev("e3", m(1), "u1", "v1", "view", watch=9_500), _ev("e4", m(2), "u1", "v1", "like"),
        _ev("e5", m(3), "u1", "v2", "view", watch=1_000),
        _ev("e6", m(60), "u2", "v1", "impression", pos=0, req="B"), _ev("e7", m(60), "u2", "v3", "impression", pos=1, req="B"),
        _ev("e8", m(61), "u2", "v1", "view", watch=9_000), _ev("e9", m(62), "u2", "v1", "share"),
        _ev("e10", m(63), "u2", "v3", "view", watch=5_000),
        _ev("e11", D2, "u1", "v2", "impression", pos=0, req="C"), _ev("e12", D2 + timedelta(minutes=1), "u1", "v2", "view", watch=4_000),
        _ev("e13", D2 + timedelta(minutes=2), "u1", "v2", "remix"),
        _ev("e14", D2 + timedelta(hours=1), "u3", "v1", "impression", pos=0, req="D"),
        _ev("e15", D5, "u2", "v1", "view", watch=2_000),
    ])
    lake.append("events", [_ev("e4", D1 + timedelta(minutes=2), "u1", "v1", "like", batch="b2")])  # the retried like
    return metrics.connect(lake.root)


WINDOW = dict(start=datetime(2026, 11, 20, tzinfo=UTC), end=datetime(2026, 11, 22, tzinfo=UTC))


def test_feed_daily_matches_hand_counts(con):
    d1, d2 = metrics.query(con, metrics.FEED_DAILY, **WINDOW).to_dicts()
    assert d1["day"] == date(2026, 11, 20)
    assert (d1["active_users"], d1["sessions"], d1["impressions"], d1["views"]) == (2, 2, 4, 4)
    assert d1["watch_s"] == pytest.approx(24.5)
    assert d1["completion_rate"] == pytest.approx(2 / 3)  # v1 twice (>= 9 s of 10), not v2 at 1 of 4 s; v3 unknown
    assert d1["like_rate"] == pytest.approx(1 / 4)  # the retried like counts once
    assert d1["share_rate"] == pytest.approx(1 / 4) and d1["remix_rate"] == 0 and d1["comment_rate"] == 0
    assert (d2["active_users"], d2["sessions"], d2["impressions"], d2["views"]) == (2, 2, 2, 1)
    assert d2["watch_s"] == pytest.approx(4.0) and d2["completion_rate"] == 1.0 and d2["remix_rate"] == 1.0


def test_active_users_rolling_windows(con):
    rows = metrics.query(con, metrics.ACTIVE_USERS, **WINDOW).to_dicts()
    assert [(r["day"], r["dau"], r["wau"], r["mau"]) for r in rows] == [
        (date(2026, 11, 20), 2, 2, 2), (date(2026, 11, 21), 2, 3, 3)]


def test_engagement_by_position_attributes_to_the_latest_showing(con):
    rows = {r["position"]: r for r in metrics.query(con, metrics.BY_POSITION, **WINDOW).to_dicts()}
    assert rows[0]["impressions"] == 4 and rows[1]["impressions"] == 2
    # position 0: u1-v1, u2-v1 and (day 2) u1-v2 viewed; one like, one share, one remix
    assert rows[0]["view_rate"] == pytest.approx(3 / 4)
    assert (rows[0]["like_rate"], rows[0]["share_rate"], rows[0]["remix_rate"]) == (0.25, 0.25, 0.25)
    # position 1: u1's day-1 view of v2 and u2's view of v3
    assert rows[1]["view_rate"] == 1.0 and rows[1]["like_rate"] == 0


def test_weekly_retention(con):
    rows = metrics.query(con, metrics.RETENTION_WEEKLY, start=datetime(2026, 11, 16, tzinfo=UTC),
                         end=datetime(2026, 11, 30, tzinfo=UTC)).to_dicts()
    assert [(r["cohort"], r["weeks_since"], r["cohort_users"], r["active_users"]) for r in rows] == [
        (date(2026, 11, 16), 0, 3, 3), (date(2026, 11, 16), 1, 3, 1)]
    assert rows[1]["retained"] == pytest.approx(1 / 3)


def test_no_events_yet_gives_empty_results(tmp_path):
    con = metrics.connect(tmp_path / "empty")
    assert metrics.query(con, metrics.FEED_DAILY, **WINDOW).is_empty()
    assert metrics.query(con, metrics.BY_POSITION, **WINDOW).is_empty()
    assert metrics.query(con, metrics.RETENTION_WEEKLY, **WINDOW).is_empty()
    assert [r["dau"] for r in metrics.query(con, metrics.ACTIVE_USERS, **WINDOW).to_dicts()] == [0, 0]
