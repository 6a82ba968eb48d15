"""The demo: the whole platform on one machine, end to end, on the embedded defaults.

Seeds users, cameos and the rights registry; starts a local Ray with the Serve application;
runs the campaign flow over ``datasets/campaigns/demo.yaml``; makes one request through the
HTTP API as an app backend would and verifies the published file's provenance; loads simulated
engagement into the lake through the event path (and the simulated catalog it refers to);
retrains the feed ranker from the lake (the ``ranking-retrain`` flow) and asks the API for a
ranked feed; refreshes the analytics layer the dashboards read; prints what happened and how
long each stage took.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kinora.settings import Settings
from kinora.stores.bundle import Stores

DEMO_CAMPAIGN = Path(__file__).resolve().parent.parent / "datasets" / "campaigns" / "demo.yaml"


@dataclass
class DemoResult:
    summary: "CampaignSummary"  # noqa: F821 - flows.campaign
    timings: dict[str, float] = field(default_factory=dict)
    api: dict = field(default_factory=dict)
    ranking: dict = field(default_factory=dict)
    engagement: dict = field(default_factory=dict)
    analytics: dict = field(default_factory=dict)


def run_demo(settings: Settings, *, campaign_path: Path = DEMO_CAMPAIGN, api_check: bool = True, ranking: bool = True,
             progress=print) -> DemoResult:
    """Run the demo and return the campaign summary, phase timings and the API round trip."""
    from serving.runtime import ray_is_running, shutdown, start_serve  # first: it sets Ray's env before Ray loads

    from flows.campaign import campaign
    from kinora.seed import seed

    owns_ray = not ray_is_running()  # leave a Ray we joined (tests, a cluster) running

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        counts = seed(conn=conn, settings=settings, media=stores.media)
    timings["seed"] = time.perf_counter() - t0
    progress(f"seeded {counts.users} users, {counts.cameos} cameos, {counts.works} registered works into {settings.home}")
    try:
        t0 = time.perf_counter()
        progress("starting Ray and the Serve application on 127.0.0.1 (tiny LTX-2, random weights, CPU)...")
        start_serve(settings)
        timings["serve_start"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        progress(f"running the campaign flow over {campaign_path}...")
        summary = campaign(str(campaign_path))
        timings["campaign"] = time.perf_counter() - t0
        api, ranked, engagement, analytics = {}, {}, {}, {}
        if api_check:
            t0 = time.perf_counter()
            api = api_round_trip(settings)
            timings["api_round_trip"] = time.perf_counter() - t0
        if ranking:
            t0 = time.perf_counter()
            progress("loading simulated engagement into the lake through the event path...")
            engagement = load_simulated_engagement(settings)
            timings["engagement"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            progress("retraining the feed ranker from the lake (the ranking-retrain flow)...")
            ranked = ranking_round_trip(settings, videos=Path(engagement["videos_file"]))
            timings["ranking"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        progress("refreshing the analytics layer (the analytics-refresh flow)...")
        analytics = analytics_refresh()
        timings["analytics"] = time.perf_counter() - t0
    finally:
        if owns_ray:
            shutdown()
    return DemoResult(summary=summary, timings=timings, api=api, ranking=ranked, engagement=engagement,
                      analytics=analytics)


def _demo_world():
    from datasets.simulator import SimConfig

    return SimConfig(users=1_000, creators=80, videos=2_000, days=9, seed=5)


def simulated_history(settings: Settings) -> tuple[Path, Path]:
    """Nine days of simulated engagement (1,000 users, 2,000 videos) under <home>/sim, made once."""
    from datasets.simulator import build_world, simulate

    folder = settings.home / "sim"
    events, videos = folder / "events.parquet", folder / "videos.parquet"
    if not events.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        world = build_world(_demo_world())
        simulate(world, seed=1).write_parquet(events)
        world.videos_frame().write_parquet(videos)
    return events, videos


def load_simulated_engagement(settings: Settings) -> dict:
    """Put the simulated history where real engagement goes: its videos into the catalog (as rows
    with no media, :mod:`datasets.catalog_rows`) and its events into the lake through the event
    path (validated, deduplicated, fsynced), both shifted so that the history ends now. Done once:
    a rerun finds the catalog rows and sends nothing (the events would be repeats anyway)."""
    import datetime as dt

    import polars as pl
    import sqlalchemy as sa

    from datasets.catalog_rows import insert_world
    from datasets.simulator import build_world
    from kinora.events import ingest, validate
    from kinora.stores.schema import videos

    events_file, _ = simulated_history(settings)
    world = build_world(_demo_world())
    stores = Stores.open(settings)
    folder = settings.home / "sim"
    shifted_videos = folder / "videos_now.parquet"
    with stores.engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(videos).where(videos.c.id.like("vid_sim%"))).scalar()
    if present and shifted_videos.is_file():
        return {"videos_file": str(shifted_videos), "catalog_videos": 0, "accepted": 0, "duplicates": 0}
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    shift = now - (world.config.start + dt.timedelta(days=world.config.days))
    inserted = insert_world(stores.engine, world, now=now)
    world.videos_frame().with_columns(pl.col("published_at") + shift).write_parquet(shifted_videos)
    frame = pl.read_parquet(events_file).with_columns(pl.col("ts") + shift)
    rows = [{k: v for k, v in r.items() if v is not None} for r in frame.iter_rows(named=True)]
    accepted = duplicates = 0
    step = settings.events.import_batch
    for i in range(0, len(rows), step):
        result = ingest(engine=stores.engine, lake=stores.lake, events=validate(rows[i:i + step]))
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    return {"videos_file": str(shifted_videos), "catalog_videos": len(inserted), "accepted": accepted,
            "duplicates": duplicates}


def analytics_refresh() -> dict:
    """Refresh the dashboards' semantic layer (the analytics-refresh flow)."""
    from flows.analytics_refresh import analytics_refresh as flow

    return flow()


def ranking_round_trip(settings: Settings, *, videos: Path, timeout_s: float = 30.0) -> dict:
    """Retrain from the lake (``videos``: the catalog's simulated videos, which the lake's videos
    table does not hold), then ask the API for alice's ranked feed until it is ranked by the
    production version (the ingress reloads it within ``reload_check_s``)."""
    from flows.ranking_retrain import ranking_retrain
    from kinora.auth import create_key
    from kinora.ranking.registry import Registry

    summary = ranking_retrain(videos=str(videos))
    production = Registry(settings.ranking_dir).production()
    with Stores.open(settings).engine.begin() as conn:
        _key_id, secret = create_key(conn=conn, user_handle="alice", name="demo-feed", scopes=["feed:read"])
    headers = {"Authorization": f"Bearer {secret}"}
    deadline = time.monotonic() + timeout_s
    while True:
        url = f"{settings.public_base_url}/v1/feed?user_id=usr_alice&limit=5"
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
            feed = json.load(resp)
        if feed["model_version"] == production or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {"retrain": summary.model_dump(), "production": production, "feed": feed}


def api_round_trip(settings: Settings, *, timeout_s: float = 120.0) -> dict:
    """Submit one generation over HTTP and poll it to the end, as an app backend would."""
    from kinora.auth import create_key

    with Stores.open(settings).engine.begin() as conn:
        _key_id, secret = create_key(conn=conn, user_handle="alice", name="demo")
    base = settings.public_base_url
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    body = { "prompt": "A lighthouse in a storm, waves crashing", "duration_s": 1.0, "seed": 11}
    req = urllib.request.Request(f"{base}/v1/generations", data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        submitted = json.load(resp) | {"http_status": resp.status}
    deadline = time.monotonic() + timeout_s
    job = submitted
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.5)
        with urllib.request.urlopen(urllib.request.Request(f"{base}/v1/generations/{submitted['id']}", headers=headers), timeout=30) as resp:
            job = json.load(resp)
    verified = None
    if job.get("video"):  # fetch the published file and ask the public verifier about it, as anyone could
        with urllib.request.urlopen(urllib.request.Request(job["video"]["url"], headers=headers), timeout=30) as resp:
            data = resp.read()
        req = urllib.request.Request(f"{base}/v1/provenance/verify", data=data, method="POST",
                                     headers={"Content-Type": "video/mp4"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            verified = json.load(resp)
    return {"submitted": submitted, "final": job, "verify": verified}
