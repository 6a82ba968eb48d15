"""The demo campaign end to end: seed, Serve, the Prefect flow, stamping, publishing, the API.

One Ray + Serve and one Prefect harness are shared with the rest of the session.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from kinora.stores import catalog
from kinora.stores import jobs as job_store
from kinora.stores.bundle import Stores

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_run(serve_app, prefect_harness):
    from kinora.demo import run_demo

    return run_demo(serve_app, api_check=True, progress=lambda m: None)


def test_campaign_outcome(demo_run, serve_app):
    s = demo_run.summary
    assert s.requested == 11
    assert (s.blocked_consent, s.blocked_rights, s.failed) == (2, 1, 0)
    assert s.generated == 8 and s.published == 8
    reasons = {r.prompt: r.reason for r in s.refusals}
    assert reasons["@carol giving a keynote on a big stage"].startswith("cameo @carol may be used by its owner only")
    assert reasons["@zed juggling oranges"] == "unknown cameo @zed"
    assert "Captain Comet (Moonbeam Studios)" in reasons["Captain Comet surfing a giant wave at dusk"]
    assert set(s.stage_seconds) == {"consent", "rights", "generate", "stamp", "publish"}
    assert all(v >= 0 for v in s.stage_seconds.values()) and s.stage_seconds["generate"] > 0


def test_blocked_requests_are_stored_with_their_reason(demo_run, serve_app):
    with Stores.open(serve_app).engine.connect() as conn:
        rows = job_store.list_jobs(conn=conn, campaign_id="demo-launch")
    assert len(rows) == 11
    jobs = {j.prompt: j for j in rows}
    assert jobs["@zed juggling oranges"].status == "blocked"
    assert jobs["@zed juggling oranges"].reason == "consent: unknown cameo @zed"
    assert jobs["Captain Comet surfing a giant wave at dusk"].reason.startswith("rights: names a work whose holder opted out")
    assert sum(j.status == "succeeded" for j in rows) == 8
    assert all(j.video_id for j in rows if j.status == "succeeded")


def test_every_video_has_video_and_audio_of_the_requested_duration_and_valid_c2pa(demo_run, serve_app):
    from kinora.provenance.c2pa_manifest import read_manifest
    from kinora.provenance.certs import load_signer_material
    from models.media import probe_mp4

    stores = Stores.open(serve_app)
    root = load_signer_material(serve_app.provenance, serve_app.cert_dir).root_pem
    with stores.engine.connect() as conn:
        videos = [catalog.get_video(conn=conn, video_id=v) for v in demo_run.summary.video_ids]
    assert len(videos) == 8
    for v in videos:
        path = stores.media.path(v.media_key)
        probe = probe_mp4(path)
        want = v.duration_ms / 1000
        frame = 1 / v.fps
        assert probe.video_codec == "h264" and probe.audio_codec == "aac"
        assert abs(probe.video_duration_s - want) <= frame + 1e-6, (v.prompt, probe)
        assert abs(probe.audio_duration_s - want) <= frame + 1e-6, (v.prompt, probe)
        assert probe.video_frames == round(want * v.fps)
        report = read_manifest(path, trust_anchors_pem=root)
        assert report.present and report.validation_state in {"Valid", "Trusted"}, report
        assert "Kinora" in report.claim_generator
        assert report.kinora.model_family == "ltx2" and report.kinora.request_id == v.job_id
        assert report.digital_source_type.endswith("trainedAlgorithmicMedia")
        assert stores.media.path(v.thumbnail_key).read_bytes()[:2] == b"\xff\xd8"  # JPEG


def test_the_lake_feeds_the_dashboard(demo_run, serve_app):
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from dashboards import layer, metrics

    assert demo_run.analytics["days_rebuilt"]["events"] >= 9  # the demo refreshed the layer (nine simulated days)
    con = layer.connect(lake=serve_app.lake_dir, root=serve_app.analytics_dir)
    now = datetime.now(UTC)
    window = dict(start=now - timedelta(days=12), end=now + timedelta(days=1), campaigns=[], versions=[], cohorts=[], top=50)
    funnel = layer.query(con, metrics.CAMPAIGN_FUNNEL, **(window | {"campaigns": ["demo-launch"]})).to_dicts()[0]
    assert (funnel["requested"], funnel["blocked_consent"], funnel["blocked_rights"], funnel["published"]) == (11, 2, 1, 8)
    rows = con.execute("SELECT device, queue_s, generate_s, mux_s, stamp_s FROM generations "
                       "WHERE campaign_id = 'demo-launch' AND status = 'published'").fetchall()
    assert len(rows) == 8
    for device, queue_s, generate_s, mux_s, stamp_s in rows:
        assert device == "cpu" and queue_s >= 0 and generate_s > 0 and 0 < mux_s < stamp_s
    for row in layer.query(con, metrics.STAGE_SECONDS, **window).to_dicts():  # the campaign and the API request
        assert all(row[k] is not None and row[k] >= 0 for k in ("consent_s", "rights_s", "generate_s", "stamp_s", "publish_s")), row
    # the simulated engagement went through the event path into the lake and out through the rollups
    sim = pl.read_parquet(serve_app.home / "sim" / "events.parquet")
    totals = layer.query(con, metrics.FEED_TOTALS, **window).row(0, named=True)
    assert demo_run.engagement["accepted"] == sim.height
    assert totals["views"] >= (sim["event_type"] == "view").sum()  # other tests may add events to the shared lake
    assert totals["sessions"] >= sim.filter(pl.col("event_type") == "impression")["request_id"].n_unique()
    blocks = layer.query(con, metrics.RIGHTS_BLOCKS, **window).to_dicts()
    assert ("Moonbeam Studios", "Captain Comet") in {(b["holder"], b["work"]) for b in blocks}
    verdicts = {r["verdict"]: r["lookups"] for r in layer.query(con, metrics.VERIFY_VERDICTS, **window).to_dicts()}
    assert verdicts.get("intact", 0) >= 1  # the demo's look-up of its own video
    versions = layer.query(con, metrics.MODEL_VERSIONS).to_dicts()
    assert demo_run.ranking["production"] in {v["version"] for v in versions if v["in_production"]}
    cover = layer.query(con, metrics.PROVENANCE_COVERAGE, **window).row(0, named=True)
    assert cover["published"] >= 9 and cover["coverage"] == 1.0  # every video Kinora published carries both stamps


def test_rerun_publishes_nothing_twice(demo_run, serve_app):
    from flows.campaign import campaign
    from kinora.demo import DEMO_CAMPAIGN

    again = campaign(str(DEMO_CAMPAIGN))
    assert again.published == 0 and again.already_published == 8
    assert (again.blocked_consent, again.blocked_rights) == (2, 1)
    with Stores.open(serve_app).engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM videos WHERE campaign_id = 'demo-launch'")).scalar_one()
    assert n == 8


def test_api_round_trip_in_the_demo(demo_run):
    api = demo_run.api
    assert api["submitted"]["http_status"] == 202
    final = api["final"]
    assert final["status"] == "succeeded", final
    assert final["video"]["url"].endswith(".mp4")
    assert final["video"]["provenance"]["c2pa_state"] in {"Valid", "Trusted"}
    assert api["verify"]["verdict"] == "intact" and api["verify"]["catalog"]["video_id"] == final["video"]["id"]


def _call(url, body=None, method="GET", key=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _key(settings, user="alice", **kw):
    from kinora.auth import create_key

    kw = {"per_day": 1000, "max_concurrent": 50} | kw
    with Stores.open(settings).engine.begin() as conn:
        return create_key(conn=conn, user_handle=user, name="e2e", **kw)[1]


def test_http_errors_through_serve(demo_run, serve_app):
    base, key = serve_app.public_base_url, _key(serve_app)
    status, body = _call(f"{base}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert _call(f"{base}/v1/generations/req_x")[0] == 401
    status, body = _call(f"{base}/v1/generations/req_does_not_exist", key=key)
    assert status == 404 and "req_does_not_exist" in json.loads(body)["detail"]
    status, body = _call(f"{base}/v1/generations", {"prompt": "x", "duration_s": "long"}, "POST", key=key)
    assert status == 422 and json.loads(body)["detail"][0]["loc"] == ["body", "duration_s"]
    status, body = _call(f"{base}/v1/generations", {"prompt": "@carol on stage", "cameos": ["carol"]}, "POST", key=key)
    assert status == 403
    out = json.loads(body)
    assert out["status"] == "blocked" and out["stage"] == "consent" and "only_me" in out["reason"]
    reader = _key(serve_app, scopes=["videos:read"])
    status, body = _call(f"{base}/v1/generations", {"prompt": "hi"}, "POST", key=reader)
    assert status == 403 and "generations:write" in json.loads(body)["detail"]
    one_a_day = _key(serve_app, per_day=1)
    assert _call(f"{base}/v1/generations", {"prompt": "Glimmer Cola ad"}, "POST", key=one_a_day)[0] == 403  # refusals count
    status, body = _call(f"{base}/v1/generations", {"prompt": "A field of tulips"}, "POST", key=one_a_day)
    assert status == 429 and "daily quota" in json.loads(body)["detail"]
    video_url = demo_run.api["final"]["video"]["url"]
    assert _call(video_url)[0] == 401
    status, body = _call(video_url, key=key)
    assert status == 200 and body[4:8] == b"ftyp"


def _replica(deployment: str):
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith(f"SERVE_REPLICA::kinora#{deployment}#")]
    assert len(names) == 1, names
    return ray.get_actor(names[0], namespace="serve")


def _poll(base, job_id, key, until, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = _call(f"{base}/v1/generations/{job_id}", key=key)
        if status == 200 and json.loads(body)["status"] in until:
            return json.loads(body)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {until}: {status} {body[:300]}")


def test_a_job_survives_an_ingress_replica_restart(demo_run, serve_app):
    import ray

    base, key = serve_app.public_base_url, _key(serve_app)
    status, body = _call(f"{base}/v1/generations", {"prompt": "A long pier at dusk", "duration_s": 4, "seed": 5}, "POST", key=key)
    assert status == 202
    job_id = json.loads(body)["id"]
    ray.kill(_replica("KinoraApi"), no_restart=True)  # Serve starts a new ingress replica
    done = _poll(base, job_id, key, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done


def test_a_generator_killed_mid_request_never_leaves_a_job_running(demo_run, serve_app):
    import ray

    base, key = serve_app.public_base_url, _key(serve_app)
    status, body = _call(f"{base}/v1/generations", {"prompt": "A slow river", "duration_s": 8, "seed": 9}, "POST", key=key)
    assert status == 202
    job_id = json.loads(body)["id"]
    _poll(base, job_id, key, {"running"}, timeout=30)
    time.sleep(0.3)
    ray.kill(_replica("VideoGenerator"), no_restart=True)
    done = _poll(base, job_id, key, {"succeeded", "failed"}, timeout=180)
    assert done["status"] in {"succeeded", "failed"}
    if done["status"] == "failed":
        assert done["reason"]


def test_a_failed_generation_fails_one_request_not_the_campaign(demo_run, serve_app, monkeypatch, tmp_path):
    """The flow's settings allow 512x512, the running generator does not (configs out of step)."""
    from flows.campaign import campaign

    monkeypatch.setenv("KINORA_GENERATION__RESOLUTIONS", '["256x256", "320x192", "512x512"]')
    f = tmp_path / "mixed.yaml"
    f.write_text("name: mixed\nrequester: studio\ndefaults: {duration_s: 1}\nitems:\n"
                 "  - {id: big, prompt: A wide valley, resolution: 512x512}\n"
                 "  - {id: ok, prompt: A small boat}\n")
    summary = campaign(str(f))
    assert (summary.requested, summary.failed, summary.published) == (2, 1, 1)
    reason = summary.failures[0].reason
    assert reason == "generation: ValueError: resolution (width x height) 512x512 is not one of the allowed ['256x256', '320x192']"
    with Stores.open(serve_app).engine.connect() as conn:
        jobs = {j.prompt: j for j in job_store.list_jobs(conn=conn, campaign_id="mixed")}
    assert jobs["A wide valley"].status == "failed" and "512x512" in jobs["A wide valley"].reason
    assert jobs["A small boat"].status == "succeeded"


def test_demo_retrains_the_ranker_and_the_api_serves_a_ranked_feed(demo_run, serve_app):
    from kinora.ranking.registry import Registry

    r = demo_run.ranking
    assert r["retrain"]["promoted"], r["retrain"]["reasons"]
    assert r["retrain"]["candidate_ndcg10"] > max(r["retrain"]["baselines_ndcg10"].values())
    assert r["production"] == Registry(serve_app.ranking_dir).production() == r["retrain"]["candidate"]
    feed = r["feed"]
    assert feed["model_version"] == r["production"]  # the Serve ingress picked the promoted version up
    assert len(feed["videos"]) in range(1, 6) and all(v["reasons"] for v in feed["videos"])
    assert [v["position"] for v in feed["videos"]] == list(range(len(feed["videos"])))


def test_prometheus_metrics_and_the_trace_of_a_campaign_request(demo_run, serve_app):
    from kinora.observability import read_trace

    url = f"http://127.0.0.1:{serve_app.serve.metrics_export_port}/metrics"
    wanted = ("ray_kinora_http_requests_total", "ray_kinora_http_request_ms_bucket", "ray_kinora_jobs{",
              "ray_kinora_generations_total", "ray_serve_num_http_requests_total")
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:  # Ray's agent exports what the replicas recorded every few seconds
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        if all(w in text for w in wanted):
            break
        time.sleep(2)
    missing = [w for w in wanted if w not in text]
    assert not missing, missing
    lines = [ln for ln in text.splitlines() if ln.startswith("ray_kinora_http_requests_total{")]
    assert any('route="/v1/generations"' in ln and 'status="202"' in ln for ln in lines), lines[:5]
    assert any('source="campaign"' in ln and 'outcome="published"' in ln
               for ln in text.splitlines() if ln.startswith("ray_kinora_generations_total{"))
    # the campaign's first published request, traced across the flow's steps by its request id
    with Stores.open(serve_app).engine.connect() as conn:
        job = conn.execute(sa.text("SELECT id, video_id FROM jobs WHERE campaign_id = 'demo-launch' AND status = 'succeeded' "
                                   "ORDER BY id LIMIT 1")).one()
    request_id = job.id
    events = [d for d in read_trace(serve_app.log_dir, request_id) if d["source"] == "campaign"]
    assert [d["event"] for d in events][:3] == ["generation.submitted", "generation.admitted", "generation.published"]
    assert events[2]["video_id"] == job.video_id
