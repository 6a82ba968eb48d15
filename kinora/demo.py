"""The demo: the whole platform on one machine, end to end, on the embedded defaults.

Seeds users, cameos and the rights registry; starts a local Ray with the Serve application;
runs the campaign flow over ``datasets/campaigns/demo.yaml``; makes one request through the
HTTP API as an app backend would; retrains the feed ranker on simulated engagement (the
``ranking-retrain`` flow) and asks the API for a ranked feed; prints what happened and how long
each stage took.
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
        api, ranked = {}, {}
        if api_check:
            t0 = time.perf_counter()
            api = api_round_trip(settings)
            timings["api_round_trip"] = time.perf_counter() - t0
        if ranking:
            t0 = time.perf_counter()
            progress("retraining the feed ranker on simulated engagement (the ranking-retrain flow)...")
            ranked = ranking_round_trip(settings)
            timings["ranking"] = time.perf_counter() - t0
    finally:
        if owns_ray:
            shutdown()
    return DemoResult(summary=summary, timings=timings, api=api, ranking=ranked)


def simulated_history(settings: Settings) -> tuple[Path, Path]:
    """Nine days of simulated engagement (1,000 users, 2,000 videos) under <home>/sim, made once."""
    from datasets.simulator import SimConfig, build_world, simulate

    folder = settings.home / "sim"
    events, videos = folder / "events.parquet", folder / "videos.parquet"
    if not events.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        world = build_world(SimConfig(users=1_000, creators=80, videos=2_000, days=9, seed=5))
        simulate(world, seed=1).write_parquet(events)
        world.videos_frame().write_parquet(videos)
    return events, videos


def ranking_round_trip(settings: Settings, *, timeout_s: float = 30.0) -> dict:
    """Retrain on the simulated history, then ask the API for alice's ranked feed until it is
    ranked by the production version (the ingress reloads it within ``reload_check_s``)."""
    from flows.ranking_retrain import ranking_retrain
    from kinora.auth import create_key
    from kinora.ranking.registry import Registry

    events, videos = simulated_history(settings)
    summary = ranking_retrain(events=str(events), videos=str(videos))
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
    return {"submitted": submitted, "final": job}
