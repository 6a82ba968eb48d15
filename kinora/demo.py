"""The demo: the whole platform on one machine, end to end, on the embedded defaults.

Seeds users, cameos and the rights registry; starts a local Ray with the Serve application;
runs the campaign flow over ``datasets/campaigns/demo.yaml``; makes one request through the
HTTP API as an app backend would; prints what happened and how long each stage took.
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


def run_demo(settings: Settings, *, campaign_path: Path = DEMO_CAMPAIGN, api_check: bool = True, progress=print) -> DemoResult:
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
        api = {}
        if api_check:
            t0 = time.perf_counter()
            api = api_round_trip(settings)
            timings["api_round_trip"] = time.perf_counter() - t0
    finally:
        if owns_ray:
            shutdown()
    return DemoResult(summary=summary, timings=timings, api=api)


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
