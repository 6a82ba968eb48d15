"""Campaign, content, trust and ranking metrics against the hand counts of the fixture
(tests/dashboards/conftest.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dashboards import layer, metrics

WINDOW = dict(start=datetime(2026, 11, 19, tzinfo=UTC), end=datetime(2026, 11, 25, tzinfo=UTC), campaigns=[],
              versions=[], cohorts=[], top=50)


def test_campaign_funnel_matches_hand_count(con):
    funnel = {r["campaign"]: r for r in layer.query(con, metrics.CAMPAIGN_FUNNEL, **WINDOW).to_dicts()}
    c1 = funnel["c1"]
    assert (c1["requested"], c1["blocked_consent"], c1["blocked_rights"], c1["failed"], c1["generated"], c1["published"]) == (5, 0, 1, 1, 4, 3)
    assert (funnel["c2"]["requested"], funnel["c2"]["blocked_consent"]) == (1, 1)


def test_filters_stage_means_and_device_seconds(con):
    only_c2 = layer.query(con, metrics.CAMPAIGN_FUNNEL, **(WINDOW | {"campaigns": ["c2"]}))
    assert only_c2["campaign"].to_list() == ["c2"]
    stages = layer.query(con, metrics.STAGE_SECONDS, **(WINDOW | {"campaigns": ["c1"]})).to_dicts()[0]
    assert stages["published"] == 3 and stages["generate_s"] == pytest.approx(3.0)  # (2 + 4 + 3) / 3
    assert stages["stamp_s"] == pytest.approx(1.0)
    devices = {r["device"]: r for r in layer.query(con, metrics.DEVICE_SECONDS, **WINDOW).to_dicts()}
    assert (devices["CPU"]["clips"], devices["CPU"]["seconds"]) == (2, pytest.approx(3.0))  # r1 2 s + r5 1 s
    assert (devices["GPU"]["clips"], devices["GPU"]["seconds"]) == (2, pytest.approx(7.0))  # r2 4 s + r3 3 s
    refusals = layer.query(con, metrics.REFUSALS, **WINDOW)
    assert sorted(refusals["request_id"].to_list()) == ["r4", "r5", "r6"]  # r3's block was superseded by its rerun
    later = layer.query(con, metrics.CAMPAIGN_FUNNEL, **(WINDOW | {"start": WINDOW["end"], "end": WINDOW["end"] + timedelta(days=1)}))
    assert later.is_empty()


def test_overview_compares_with_the_previous_period(con):
    rows = {r["period"]: r for r in layer.query(con, metrics.OVERVIEW, **(WINDOW | {
        "start": datetime(2026, 11, 21, tzinfo=UTC), "end": datetime(2026, 11, 22, tzinfo=UTC)})).to_dicts()}
    cur, prev = rows["current"], rows["previous"]  # 21 Nov against 20 Nov
    assert (cur["views"], prev["views"]) == (1, 4)
    assert (cur["sessions"], prev["sessions"]) == (2, 2)
    assert cur["avg_dau"] == 2 and prev["avg_dau"] == 2
    assert (cur["requested"], prev["requested"]) == (0, 6)
    assert prev["published"] == 3 and prev["blocked_share"] == pytest.approx(2 / 6)
    assert (cur["verify_lookups"], prev["verify_lookups"]) == (2, 0)


def test_top_videos_creators_remix_chains_and_cameos(con):
    top = layer.query(con, metrics.TOP_VIDEOS, **WINDOW)
    assert top["video_id"].to_list() == ["v1", "v2", "v3"] and top["views"].to_list() == [3, 2, 1]
    creators = {r["creator_id"]: r for r in layer.query(con, metrics.TOP_CREATORS, **WINDOW).to_dicts()}
    assert creators["c"]["views"] == 5 and creators["(unknown)"]["views"] == 1
    (chain,) = layer.query(con, metrics.REMIX_CHAINS, **WINDOW).to_dicts()
    assert (chain["video_id"], chain["depth"], chain["remixes"]) == ("v1", 2, 2)
    cameos = {r["handle"]: r for r in layer.query(con, metrics.CAMEO_USAGE, **WINDOW).to_dicts()}
    assert (cameos["alice"]["uses"], cameos["alice"]["active"], cameos["alice"]["pending"]) == (2, 1, 1)
    assert (cameos["bob"]["withdrawn"], cameos["bob"]["revoked"]) == (1, True)


def test_trust_and_safety(con):
    daily = {r["day"]: r for r in layer.query(con, metrics.TRUST_DAILY, **WINDOW).to_dicts()}
    assert daily[date(2026, 11, 20)]["consent_blocks"] == 1 and daily[date(2026, 11, 20)]["rights_blocks"] == 1
    d21 = daily[date(2026, 11, 21)]
    assert (d21["revocations"], d21["takedowns"], d21["verify_lookups"]) == (1, 2, 2)
    assert daily[date(2026, 11, 22)]["verify_lookups"] == 1
    (block,) = layer.query(con, metrics.RIGHTS_BLOCKS, **WINDOW).to_dicts()
    assert (block["holder"], block["work"], block["blocks"]) == ("Moonbeam Studios", "Captain Comet", 1)
    causes = {r["cause"]: r["videos"] for r in layer.query(con, metrics.TAKEDOWNS, **WINDOW).to_dicts()}
    assert causes == {"rights re-screen": 1, "consent lapsed (sweep)": 1}
    cover = layer.query(con, metrics.PROVENANCE_COVERAGE, **(WINDOW | {"start": datetime(2026, 11, 20, tzinfo=UTC)})).row(0, named=True)
    # published 20-24 Nov: v4, v5, v6, v7; marked v4, v5, v7; signed v4, v6, v7; both v4, v7
    assert (cover["published"], cover["watermarked"], cover["signed"], cover["both_stamps"]) == (4, 3, 3, 2)
    assert cover["coverage"] == 0.5
    verdicts = {r["verdict"]: r for r in layer.query(con, metrics.VERIFY_VERDICTS, **WINDOW).to_dicts()}
    assert {k: v["lookups"] for k, v in verdicts.items()} == {"intact": 1, "tampered": 1, "unknown": 1}
    assert verdicts["intact"]["matched_a_video"] == 1 and verdicts["unknown"]["matched_a_video"] == 0


def test_ranker_versions_from_the_registry(con):
    rows = layer.query(con, metrics.MODEL_VERSIONS).to_dicts()
    assert [r["version"] for r in rows] == ["rk-2", "rk-1"]  # newest first
    assert rows[0]["in_production"] and not rows[1]["in_production"]
    assert rows[0]["ndcg10"] == 0.56 and rows[0]["lightgbm_ndcg10"] == 0.54 and rows[0]["recent_popular_ndcg10"] is None
    assert rows[1]["promoted_at"] < rows[0]["promoted_at"]


def test_every_metric_is_documented():
    assert len(metrics.METRICS) >= 20 and len({m.name for m in metrics.METRICS}) == len(metrics.METRICS)
    pages = {p.strip() for m in metrics.METRICS for p in m.page.split(",")}
    assert pages == set(metrics.PAGES)
    assert all(m.definition and m.grain for m in metrics.METRICS)
