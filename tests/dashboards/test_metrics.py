from datetime import UTC, datetime, timedelta

import pytest

from dashboards import metrics
from kinora.stores.lake import Lake

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
WINDOW = dict(start=T0 - timedelta(days=1), end=T0 + timedelta(days=2), campaigns=[])


def _gen(rid, status, campaign="c1", ts=T0, generate_s=None, stamp_s=None):
    return dict(request_id=rid, campaign_id=campaign, requester_id="u", source="campaign", status=status, reason=None,
                video_id=None, model_family=None, model_version=None, seed=1, duration_s=2.0, consent_s=0.01,
                rights_s=0.02, generate_s=generate_s, stamp_s=stamp_s, publish_s=None, ts=ts)


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path)
    lake.append("generations", [
        _gen("r1", "published", generate_s=2.0, stamp_s=0.5),
        _gen("r2", "published", generate_s=4.0, stamp_s=1.5),
        _gen("r3", "blocked_consent"),
        _gen("r4", "blocked_rights"),
        _gen("r5", "failed", generate_s=1.0),
        _gen("r6", "blocked_consent", campaign="c2"),
        # a rerun: r3 was blocked, then published; only the newest outcome counts
        _gen("r3", "published", ts=T0 + timedelta(hours=1), generate_s=3.0, stamp_s=1.0),
    ])
    lake.append("videos", [dict(video_id=f"v{i}", request_id=f"r{i}", creator_id="u", campaign_id="c1", prompt="p",
                                duration_ms=2000, width=256, height=256, model_family="ltx2", model_version="t",
                                c2pa_state="Valid", cameo_count=0, published_at=T0) for i in (1, 2, 3)])
    return lake


def test_campaign_funnel_matches_hand_count(lake):
    con = metrics.connect(lake.root)
    funnel = {r["campaign"]: r for r in metrics.query(con, metrics.CAMPAIGN_FUNNEL, **WINDOW).to_dicts()}
    c1 = funnel["c1"]
    assert (c1["requested"], c1["blocked_consent"], c1["blocked_rights"], c1["failed"], c1["generated"], c1["published"]) == (5, 0, 1, 1, 4, 3)
    assert (funnel["c2"]["requested"], funnel["c2"]["blocked_consent"]) == (1, 1)


def test_filters_and_stage_means(lake):
    con = metrics.connect(lake.root)
    only_c2 = metrics.query(con, metrics.CAMPAIGN_FUNNEL, **(WINDOW | {"campaigns": ["c2"]}))
    assert only_c2["campaign"].to_list() == ["c2"]
    stages = metrics.query(con, metrics.STAGE_SECONDS, **(WINDOW | {"campaigns": ["c1"]})).to_dicts()[0]
    assert stages["generate_s"] == pytest.approx(3.0)  # (2 + 4 + 3) / 3
    assert stages["stamp_s"] == pytest.approx(1.0)
    later = metrics.query(con, metrics.CAMPAIGN_FUNNEL, start=T0 + timedelta(days=5), end=T0 + timedelta(days=6), campaigns=[])
    assert later.is_empty()
    assert metrics.query(con, metrics.PUBLISHED_VIDEOS, **WINDOW).height == 3


def test_empty_lake_gives_empty_results(tmp_path):
    con = metrics.connect(tmp_path / "nothing")
    assert metrics.query(con, metrics.CAMPAIGN_FUNNEL, **WINDOW).is_empty()
    assert metrics.query(con, metrics.PUBLISHED_VIDEOS, **WINDOW).is_empty()
