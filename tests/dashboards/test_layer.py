"""The analytics layer's refresh: incremental by day, exact after duplicates, quarantines and
removals; the catalog snapshot from a real operational store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from dashboards import layer, metrics
from kinora.stores.lake import Lake

W = dict(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 12, 1, tzinfo=UTC), campaigns=[], versions=[],
         cohorts=[], top=50)
DAY = datetime(2026, 11, 20, 23, 50, tzinfo=UTC)


def _ev(eid, ts, kind, user="u1", video="v1", batch="b1", **kw):
    return dict(event_id=eid, ts=ts, user_id=user, video_id=video, event_type=kind, batch_id=batch,
                watch_ms=kw.get("watch"), position=kw.get("pos"), request_id=kw.get("req"))


def _views(root, lake):
    con = layer.connect(lake=lake, root=root)
    return {r["day"].isoformat(): r["views"] for r in layer.query(con, metrics.FEED_DAILY, **W).to_dicts()}


def test_a_second_refresh_rebuilds_nothing_and_a_new_file_rebuilds_its_day_and_the_next(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.append("events", [_ev(f"a{i}", DAY - timedelta(days=d), "view", watch=1000) for d in range(3) for i in range(d + 1)])
    root = tmp_path / "analytics"
    first = layer.refresh(lake=lake.root, root=root)
    assert first.days_rebuilt["events"] == 3
    assert _views(root, lake.root) == {"2026-11-18": 3, "2026-11-19": 2, "2026-11-20": 1}
    assert layer.refresh(lake=lake.root, root=root).days_rebuilt["events"] == 0
    lake.append("events", [_ev("new", DAY - timedelta(days=2), "view", watch=1000)])
    again = layer.refresh(lake=lake.root, root=root)
    assert again.days_rebuilt["events"] == 2  # the 18th, and the 19th whose attribution reads the 18th
    assert _views(root, lake.root)["2026-11-18"] == 4


def test_a_retried_batch_counts_once_and_a_quarantined_batch_leaves_the_numbers(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.append("events", [_ev("x1", DAY, "view", watch=1000), _ev("x2", DAY, "view", watch=1000)])
    lake.append("events", [_ev("x1", DAY, "view", watch=1000, batch="b2")])  # the retry
    bad = lake.append("events", [_ev("y1", DAY, "view", watch=1000, batch="b3")])
    root = tmp_path / "analytics"
    layer.refresh(lake=lake.root, root=root)
    assert _views(root, lake.root) == {"2026-11-20": 3}
    quarantine = tmp_path / "lake" / "_quarantine"
    quarantine.mkdir()
    shutil.move(bad[0], quarantine / Path(bad[0]).name)  # what the retrain flow's gate does with a failing batch
    report = layer.refresh(lake=lake.root, root=root)
    assert report.days_rebuilt["events"] == 1
    assert _views(root, lake.root) == {"2026-11-20": 2}


def test_a_day_that_leaves_the_lake_leaves_the_rollups(tmp_path):
    lake = Lake(tmp_path / "lake")
    files = lake.append("events", [_ev("z1", DAY, "view", watch=1), _ev("z2", DAY - timedelta(days=5), "view", watch=1)])
    root = tmp_path / "analytics"
    layer.refresh(lake=lake.root, root=root)
    gone = [Path(f) for f in files if "2026-11-15" in f][0]
    gone.unlink()
    report = layer.refresh(lake=lake.root, root=root)
    assert report.days_removed["events"] == 1
    assert not (root / "rollups" / "user_day" / "2026-11-15.parquet").exists()
    assert _views(root, lake.root) == {"2026-11-20": 1}


def test_attribution_crosses_midnight_but_not_two(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.append("events", [
        _ev("i1", DAY, "impression", pos=3, req="R"),  # 23:50 on the 20th
        _ev("v1", DAY + timedelta(minutes=20), "view", watch=500),  # 00:10 on the 21st: attributed to position 3
        _ev("i2", DAY - timedelta(days=2), "impression", video="v9", pos=5, req="S"),
        _ev("v2", DAY, "view", video="v9", watch=500),  # two days later: outside the window, not attributed
    ])
    root = tmp_path / "analytics"
    layer.refresh(lake=lake.root, root=root)
    con = layer.connect(lake=lake.root, root=root)
    rows = {r["position"]: r for r in layer.query(con, metrics.BY_POSITION, **W).to_dicts()}
    assert rows[3]["view_rate"] == 1.0 and rows[5]["view_rate"] == 0.0


def test_full_rebuild_and_a_changed_completion_share(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.append("videos", [dict(video_id="v1", request_id="r", creator_id="c", campaign_id=None, prompt="p", duration_ms=10_000,
                                width=256, height=256, model_family="ltx2", model_version="t", c2pa_state="Valid",
                                cameo_count=0, published_at=DAY - timedelta(days=3))])
    lake.append("events", [_ev("w", DAY, "view", watch=8_000)])
    root = tmp_path / "analytics"
    layer.refresh(lake=lake.root, root=root, completion_share=0.9)
    con = layer.connect(lake=lake.root, root=root)
    assert layer.query(con, metrics.FEED_TOTALS, **W)["completion_rate"].to_list() == [0.0]
    again = layer.refresh(lake=lake.root, root=root, completion_share=0.75)  # a new definition rebuilds every day
    assert again.days_rebuilt["events"] == 1
    con = layer.connect(lake=lake.root, root=root)
    assert layer.query(con, metrics.FEED_TOTALS, **W)["completion_rate"].to_list() == [1.0]
    assert layer.refresh(lake=lake.root, root=root, completion_share=0.75, full=True).days_rebuilt["events"] == 1
    state = json.loads((root / "state.json").read_text())
    assert state["completion_share"] == 0.75 and state["refreshed_at"]


def test_the_catalog_snapshot_from_the_operational_store(seeded, settings):
    from kinora.stores.catalog_export import export_catalog

    with seeded.engine.connect() as conn, conn.begin():
        counts = export_catalog(conn=conn, out_dir=settings.analytics_dir / "catalog")
    assert counts["users"] == 7 and counts["cameos"] == 6 and counts["rights_works"] == 30  # datasets/seed
    assert counts["consent_ledger"] >= 5  # a grant per cameo, plus approval lists
    cameos = pq.read_table(settings.analytics_dir / "catalog" / "cameos.parquet").to_pylist()
    assert {c["handle"] for c in cameos} >= {"alice", "bob", "carol"}
    assert "attestation" not in cameos[0] and "media" not in cameos[0]  # nothing secret or personal beyond the handle
    ledger = pq.read_table(settings.analytics_dir / "catalog" / "consent_ledger.parquet")
    assert "signature" not in ledger.column_names and "detail" not in ledger.column_names


def test_refresh_all_snapshots_the_catalog_and_the_pages_read_it(seeded, settings):
    report = layer.refresh_all(settings)
    assert report.catalog_rows["cameos"] == 6
    con = layer.connect(lake=settings.lake_dir, root=settings.analytics_dir)
    usage = layer.query(con, metrics.CAMEO_USAGE, **W)
    assert usage.height == 6 and set(usage["uses"].to_list()) == {0}
    assert layer.refreshed_at(settings.analytics_dir) is not None
