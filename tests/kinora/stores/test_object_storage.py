"""The lake and the media store on an S3-compatible endpoint (moto's server, started by the tests).

Each test checks the objects in the bucket with a file system of its own (not Kinora's), and
reads the lake back with DuckDB and Polars the way the dashboards and the ranker do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import duckdb
import fsspec
import polars as pl
import pytest
from fastapi.testclient import TestClient

from kinora.settings import Settings
from kinora.stores.lake import Lake, LakeError
from kinora.stores.media import MediaStore
from kinora.stores.objects import place

UTC = dt.timezone.utc
CREDS = {"access_key_id": "test", "secret_access_key": "test", "region": "eu-west-1"}


def _storage(endpoint: str) -> dict:
    return {"endpoint_url": endpoint, **CREDS}


def _bucket_fs(endpoint: str):
    """A file system of the test's own: what is really in the bucket."""
    return fsspec.filesystem("s3", key="test", secret="test", skip_instance_cache=True, use_listings_cache=False,
                             client_kwargs={"endpoint_url": endpoint, "region_name": "eu-west-1"})


def _s3_settings(tmp_path, database_url, endpoint: str, bucket: str) -> Settings:
    store = {"lake_url": f"s3://{bucket}/lake", "media_url": f"s3://{bucket}/media", "object_storage": _storage(endpoint)}
    if database_url:
        store["database_url"] = database_url
    return Settings(home=tmp_path / "home", store=store)


def _decision(ts: dt.datetime, rid: str) -> dict:
    return dict(request_id=rid, campaign_id="c", stage="consent", outcome="allow", reason="ok", ts=ts)


def test_lake_on_s3_writes_objects_that_duckdb_and_polars_read(s3_bucket):
    from kinora.settings import ObjectStorageSettings

    endpoint, bucket = s3_bucket
    where = place(f"s3://{bucket}/lake", ObjectStorageSettings(**_storage(endpoint)))
    lake = Lake(where, writer="w1")
    d1, d2 = dt.datetime(2026, 11, 24, 23, tzinfo=UTC), dt.datetime(2026, 11, 25, 1, tzinfo=UTC)
    written = lake.append("decisions", [_decision(d1, "a"), _decision(d2, "b")])
    written += lake.append("decisions", [_decision(d2, "c")])
    assert len(written) == 3 and all(w.startswith(f"s3://{bucket}/lake/decisions/date=") for w in written)

    theirs = sorted(_bucket_fs(endpoint).find(f"{bucket}/lake"))
    assert [p.split("/")[3] for p in theirs] == ["date=2026-11-24", "date=2026-11-25", "date=2026-11-25"]
    assert [f.day for f in lake.listing("decisions")] == ["2026-11-24", "2026-11-25", "2026-11-25"]
    assert sorted(lake.read("decisions").column("request_id").to_pylist()) == ["a", "b", "c"]

    con = duckdb.connect()
    where.attach(con)  # fsspec registered on the connection: no httpfs extension to fetch
    rows = con.execute(f"SELECT request_id, date FROM read_parquet('{lake.glob('decisions')}', hive_partitioning = true) "
                       "ORDER BY 1").fetchall()
    assert rows == [("a", dt.date(2026, 11, 24)), ("b", dt.date(2026, 11, 25)), ("c", dt.date(2026, 11, 25))]
    frame = pl.scan_parquet(lake.glob("decisions"), storage_options=lake.polars_options(), hive_partitioning=True).collect()
    assert sorted(frame["request_id"].to_list()) == ["a", "b", "c"]

    with pytest.raises(LakeError, match="unknown fields"):
        lake.append("decisions", [_decision(d1, "d") | {"oops": 1}])
    assert len(_bucket_fs(endpoint).find(f"{bucket}/lake")) == 3  # a refused batch leaves no object


def test_media_on_s3_put_get_range_delete_and_keys_stay_inside(s3_bucket):
    from kinora.settings import ObjectStorageSettings

    endpoint, bucket = s3_bucket
    media = MediaStore(place(f"s3://{bucket}/media", ObjectStorageSettings(**_storage(endpoint))))
    data = bytes(range(256)) * 40
    media.put_bytes(data, "videos/2026/11/25/vid_a.mp4")
    assert _bucket_fs(endpoint).cat_file(f"{bucket}/media/videos/2026/11/25/vid_a.mp4") == data
    assert media.exists("videos/2026/11/25/vid_a.mp4") and not media.exists("videos/nope.mp4")
    assert media.size("videos/2026/11/25/vid_a.mp4") == len(data)
    assert media.read_range("videos/2026/11/25/vid_a.mp4", 100, 164) == data[100:164]
    with media.local_file("videos/2026/11/25/vid_a.mp4") as local:
        assert local.read_bytes() == data
    assert not local.exists()  # the download is gone afterwards
    for bad in ("../escape.mp4", "/etc/passwd", "videos/../../x"):
        with pytest.raises(ValueError, match="leaves the media store"):
            media.put_bytes(b"x", bad)
    assert media.delete("videos/2026/11/25/vid_a.mp4") is True
    assert media.delete("videos/2026/11/25/vid_a.mp4") is False
    assert _bucket_fs(endpoint).find(f"{bucket}/media") == []


def test_the_platform_on_s3_generates_serves_ranges_ingests_and_analyses(tmp_path, database_url, s3_bucket, tiny_generator):
    """Generation, remix, the MP4 with Range requests, verify, events, status, analytics: all on S3."""
    from dashboards import layer
    from kinora.auth import create_key
    from kinora.provenance.certs import load_signer_material
    from kinora.seed import seed
    from kinora.status import check_files
    from kinora.stores.bundle import Stores
    from serving.api import create_api

    endpoint, bucket = s3_bucket
    settings = _s3_settings(tmp_path, database_url, endpoint, bucket)
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        key = create_key(conn=conn, user_handle="alice", name="t", scopes=["generations:write", "generations:read",
                                                                          "videos:read", "events:write"])[1]

    async def generate(request):
        return (await asyncio.to_thread(tiny_generator.generate, [request]))[0]

    api = create_api(settings=settings, stores=stores, generate=generate,
                     material=load_signer_material(settings.provenance, settings.cert_dir))
    bucket_fs = _bucket_fs(endpoint)
    with TestClient(api, headers={"Authorization": f"Bearer {key}"}) as c:
        def wait(job_id: str) -> dict:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                body = c.get(f"/v1/generations/{job_id}").json()
                if body["status"] not in {"queued", "running"}:
                    return body
                time.sleep(0.1)
            raise AssertionError(f"{job_id} still {body['status']}")

        done = wait(c.post("/v1/generations", json={"prompt": "A red kite over dunes", "duration_s": 1, "seed": 3}).json()["id"])
        assert done["status"] == "succeeded", done
        vid = done["video"]["id"]
        with stores.engine.connect() as conn:
            from kinora.stores import catalog

            video = catalog.get_video(conn=conn, video_id=vid)
        stored = bucket_fs.cat_file(f"{bucket}/media/{video.media_key}")
        assert stored[4:8] == b"ftyp" and bucket_fs.exists(f"{bucket}/media/{video.thumbnail_key}")
        assert not (settings.home / "media").exists()  # nothing went to the local default

        path = f"/v1/videos/{vid}.mp4"
        full = c.get(path)
        assert full.status_code == 200 and full.content == stored and full.headers["accept-ranges"] == "bytes"
        part = c.get(path, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == stored[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(stored)}"
        tail = c.get(path, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == stored[-10:]
        beyond = c.get(path, headers={"Range": f"bytes={len(stored)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(stored)}"
        assert c.get(f"/v1/videos/{vid}.jpg").content[:2] == b"\xff\xd8"

        # a remix reads its parent's first frame and manifest from the bucket
        remix = wait(c.post("/v1/generations", json={"prompt": "now it snows", "remix_of": vid, "duration_s": 1,
                                                      "seed": 4}).json()["id"])
        assert remix["status"] == "succeeded", remix

        verdict = c.post("/v1/provenance/verify", content=stored, headers={"content-type": "video/mp4"})
        assert verdict.status_code == 200 and verdict.json()["verdict"] == "intact", verdict.json()

        ts = dt.datetime.now(UTC).replace(microsecond=0).isoformat()
        events = [{"event_id": f"e{i}", "ts": ts, "user_id": "usr_bob", "video_id": vid, "event_type": "view",
                   "watch_ms": 800} for i in range(5)]
        ok = c.post("/v1/events", json={"events": events})
        assert ok.status_code == 202 and ok.json()["accepted"] == 5
        assert c.post("/v1/events", json={"events": events}).json()["duplicates"] == 5

    lake_objects = bucket_fs.find(f"{bucket}/lake")
    for table in ("events", "generations", "verifications"):
        assert any(p.startswith(f"{bucket}/lake/{table}/date=") for p in lake_objects), table
    assert not (settings.home / "lake").exists()

    checks = {c.component: c for c in check_files(settings)}
    assert checks["lake"].state == "ok" and checks["lake"].detail.startswith(f"s3://{bucket}/lake: ")
    assert checks["media"].state == "ok" and f"s3://{bucket}/media" in checks["media"].detail

    report = layer.refresh_all(settings)
    assert report.days_rebuilt["events"] == 1
    con = layer.connect(lake=stores.lake, root=settings.analytics_dir, raw=True)
    assert con.execute("SELECT sum(views) FROM feed_daily").fetchall() == [(5,)]
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(5,)]  # the raw lake, read from the bucket
    assert con.execute("SELECT count(*) FROM generation_rows WHERE status = 'published'").fetchall() == [(2,)]


def test_the_quality_gate_quarantines_on_s3_and_the_snapshot_downloads_what_passed(tmp_path, s3_bucket):
    from kinora.ranking.snapshot import snapshot_lake

    endpoint, bucket = s3_bucket
    settings = _s3_settings(tmp_path, None, endpoint, bucket)
    from kinora.stores.objects import lake_place

    lake = Lake(lake_place(settings))
    now = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    lake.append("videos", [{"video_id": "vid_1", "request_id": "req_1", "creator_id": "usr_c", "prompt": "a kite",
                            "duration_ms": 2000, "width": 256, "height": 256, "model_family": "ltx2",
                            "model_version": "tiny", "cameo_count": 0, "published_at": now}])

    def ev(i: int, video: str, batch: str) -> dict:
        return {"event_id": f"{batch}-{i}", "ts": now, "user_id": f"usr_{i}", "video_id": video, "event_type": "view",
                "watch_ms": 900, "position": None, "request_id": None, "batch_id": batch}

    lake.append("events", [ev(i, "vid_1", "good") for i in range(20)])
    lake.append("events", [ev(i, "vid_unknown", "bad") for i in range(3)])
    events_dir, videos_path, gate = snapshot_lake(lake, tmp_path / "snap")
    assert gate.passed == ["good"] and gate.quarantined == ["bad"]

    found = _bucket_fs(endpoint).find(f"{bucket}/lake")
    assert any(p.startswith(f"{bucket}/lake/_quarantine/events/bad/") and p.endswith(".parquet") for p in found)
    assert f"{bucket}/lake/_quarantine/events/bad/report.md" in found
    assert f"{bucket}/lake/_quality/events/good.json" in found
    assert len(lake.files("events")) == 1  # the failing batch left the table the dashboards read
    local = list(events_dir.glob("*.parquet"))
    assert len(local) == 1 and pl.read_parquet(local[0]).height == 20
    _, _, again = snapshot_lake(lake, tmp_path / "snap2")
    assert again.passed == ["good"] and again.reports == []  # the mark on S3 is honoured
