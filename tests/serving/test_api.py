"""The HTTP API in-process (FastAPI TestClient) over the real tiny generator: every status code."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from kinora.settings import Settings


def _settings(tmp_path, database_url, **serve) -> Settings:
    """``database_url``: the per-test store (conftest's fixture; PostgreSQL in the PostgreSQL pass)."""
    return Settings(home=tmp_path / "home", serve={"recovery_interval_s": 0.2, **serve},
                    store={"database_url": database_url} if database_url else {})


def _stores(settings):
    from kinora.seed import seed
    from kinora.stores.bundle import Stores

    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
    return stores


def _key(stores, user="alice", **kw) -> str:
    from kinora.auth import create_key

    with stores.engine.begin() as conn:
        return create_key(conn=conn, user_handle=user, name="t", **kw)[1]


def _app(settings, stores, generate):
    from kinora.provenance.certs import load_signer_material
    from serving.api import create_api

    return create_api(settings=settings, stores=stores, generate=generate,
                      material=load_signer_material(settings.provenance, settings.cert_dir))


def _real(tiny_generator):
    async def generate(request):
        return (await asyncio.to_thread(tiny_generator.generate, [request]))[0]
    return generate


def _auth(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def env(tmp_path, database_url, tiny_generator):
    """A client over a seeded store; ``env.key`` belongs to alice with the default scopes."""
    settings = _settings(tmp_path, database_url)
    stores = _stores(settings)

    class Env:
        pass

    e = Env()
    e.settings, e.stores, e.key = settings, stores, _key(stores)
    with TestClient(_app(settings, stores, _real(tiny_generator)), headers=_auth(e.key)) as client:
        e.client = client
        yield e


def _wait(client, job_id, timeout=60, headers=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/generations/{job_id}", headers=headers).json()
        if body["status"] not in {"queued", "running"}:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {body['status']}")


def test_submit_poll_fetch_metadata_and_range(env):
    c = env.client
    r = c.post("/v1/generations", json={"prompt": "A red kite over dunes", "duration_s": 1, "seed": 3})
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and job["id"].startswith("req_")
    done = _wait(c, job["id"])
    assert done["status"] == "succeeded", done
    video = done["video"]
    assert video["duration_s"] == 1.0 and video["model_family"] == "ltx2" and video["creator"] == "alice"
    assert video["provenance"]["c2pa_state"] in {"Valid", "Trusted"} and len(video["provenance"]["sha256"]) == 64
    meta = c.get(f"/v1/videos/{video['id']}")
    assert meta.status_code == 200 and meta.json()["prompt"] == "A red kite over dunes"
    path = f"/v1/videos/{video['id']}.mp4"
    full = c.get(path)
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4" and full.content[4:8] == b"ftyp"
    part = c.get(path, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content == full.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full.content)}"
    assert c.get(f"/v1/videos/{video['id']}.jpg").content[:2] == b"\xff\xd8"


def test_one_request_id_traces_a_generation_from_submission_to_its_video(env):
    from kinora.observability import read_trace

    r = env.client.post("/v1/generations", json={"prompt": "A lantern on a pier", "duration_s": 1, "seed": 4})
    done = _wait(env.client, r.json()["id"])
    assert done["status"] == "succeeded", done
    lines = list(read_trace(env.settings.log_dir, done["id"]))
    assert [d["event"] for d in lines] == ["generation.submitted", "generation.admitted", "generation.published"]
    assert {d["request_id"] for d in lines} == {done["id"]} and all(d["source"] == "api" for d in lines)
    published = lines[-1]
    assert published["video_id"] == done["video"]["id"] and published["device"] == "cpu" and published["generate_s"] > 0
    assert lines[0]["ts"] <= lines[1]["ts"] <= lines[2]["ts"] and lines[0]["level"] == "INFO"
    refused = env.client.post("/v1/generations", json={"prompt": "@zed juggling", "cameos": ["zed"], "duration_s": 1})
    assert refused.status_code == 403
    events = [d["event"] for d in read_trace(env.settings.log_dir, refused.json()["id"])]
    assert events == ["generation.submitted", "generation.refused", "generation.blocked"]


def test_idempotency_key_returns_the_same_job(env):
    body = {"prompt": "A quiet pond", "duration_s": 1, "seed": 1}
    first = env.client.post("/v1/generations", json=body, headers={"Idempotency-Key": "abc"})
    second = env.client.post("/v1/generations", json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    _wait(env.client, first.json()["id"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "hi", "duration_s": 99}, "duration_s"),
        ({"prompt": "hi", "duration_s": 0.2}, "duration_s"),
        ({"prompt": "hi", "resolution": "4096x4096"}, "resolution"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"prompt": "hi", "colour": "red"}, "colour"),
        ({"prompt": "hi", "fps": 30}, "fps"),
        ({"prompt": "hi", "cameos": ["c"] * 17}, "cameos"),
        # nothing in a request can point the server at a model or a path: only settings do
        ({"prompt": "hi", "model": "ltx2"}, "model"),
        ({"prompt": "hi", "checkpoint_dir": "/etc"}, "checkpoint_dir"),
    ],
)
def test_malformed_bodies_get_422_naming_the_field(env, body, field):
    r = env.client.post("/v1/generations", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field


def test_keys_scopes_and_acting_for_others(env):
    c, stores = env.client, env.stores
    assert c.get("/v1/generations/req_x", headers={"Authorization": ""}).status_code == 401
    r = c.get("/v1/generations/req_x", headers=_auth("kin_not-a-real-key"))
    assert r.status_code == 401 and "invalid" in r.json()["detail"]
    read_only = _key(stores, scopes=["generations:read"])
    r = c.post("/v1/generations", json={"prompt": "hi"}, headers=_auth(read_only))
    assert r.status_code == 403 and "generations:write" in r.json()["detail"]
    # alice's key cannot make videos for bob; a backend key with act_as can
    r = c.post("/v1/generations", json={"prompt": "hi", "requester": "bob"})
    assert r.status_code == 403 and "generations:act_as" in r.json()["detail"]
    backend = _key(stores, user="studio", scopes=["generations:write", "generations:read", "generations:act_as"])
    r = c.post("/v1/generations", json={"prompt": "A kite", "requester": "bob", "duration_s": 1}, headers=_auth(backend))
    assert r.status_code == 202
    r = c.post("/v1/generations", json={"prompt": "hi", "requester": "nobody"}, headers=_auth(backend))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "requester"
    # a revoked key stops working at once
    from kinora.stores import api_keys as key_store

    with stores.engine.begin() as conn:
        key_id = [k.id for k in key_store.list_keys(conn=conn) if k.user_id == "usr_studio"][0]
        key_store.revoke_key(conn=conn, key_id=key_id)
    assert c.get("/v1/generations/req_x", headers=_auth(backend)).status_code == 401


def test_jobs_of_other_users_are_404(env):
    job = env.client.post("/v1/generations", json={"prompt": "mine", "duration_s": 1}).json()
    bob = _key(env.stores, user="bob")
    assert env.client.get(f"/v1/generations/{job['id']}", headers=_auth(bob)).status_code == 404
    assert env.client.get("/v1/generations/req_nope").status_code == 404
    assert env.client.get("/v1/videos/vid_nope").status_code == 404
    _wait(env.client, job["id"])


def test_refusals_are_403_with_the_reason_and_stored(env):
    studio = _key(env.stores, user="studio")
    r = env.client.post("/v1/generations", json={"prompt": "hi", "cameos": ["carol"]}, headers=_auth(studio))
    assert r.status_code == 403
    assert r.json()["stage"] == "consent" and "only_me" in r.json()["reason"]
    assert env.client.get(f"/v1/generations/{r.json()['id']}", headers=_auth(studio)).json()["status"] == "blocked"
    r = env.client.post("/v1/generations", json={"prompt": "Glimmer Cola commercial"})
    assert r.status_code == 403 and r.json()["stage"] == "rights" and "Glimmer Cola" in r.json()["reason"]


def test_quotas_give_429_with_retry_after(tmp_path, database_url):
    gate = asyncio.Event()  # never set: jobs stay in flight, so the concurrency quota is reached

    async def stuck(request):
        await gate.wait()

    settings = _settings(tmp_path, database_url)
    stores = _stores(settings)
    key = _key(stores, per_day=3, max_concurrent=2)
    with TestClient(_app(settings, stores, stuck), headers=_auth(key)) as c:
        assert [c.post("/v1/generations", json={"prompt": f"p{i}"}).status_code for i in range(2)] == [202, 202]
        r = c.post("/v1/generations", json={"prompt": "p3"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and "at once" in r.json()["detail"]
    other = _key(stores, per_day=1, max_concurrent=5)
    with TestClient(_app(settings, stores, stuck), headers=_auth(other)) as c:
        assert c.post("/v1/generations", json={"prompt": "one"}).status_code == 202
        r = c.post("/v1/generations", json={"prompt": "two"})
        assert r.status_code == 429 and "daily quota" in r.json()["detail"]
        assert 0 < int(r.headers["Retry-After"]) <= 86_401


def test_cancel_a_queued_job_but_not_a_running_one(tmp_path, database_url):
    gate = asyncio.Event()

    async def stuck(request):
        await gate.wait()

    settings = _settings(tmp_path, database_url, max_inflight_jobs=1)
    stores = _stores(settings)
    with TestClient(_app(settings, stores, stuck), headers=_auth(_key(stores))) as c:
        running = c.post("/v1/generations", json={"prompt": "first"}).json()["id"]
        queued = c.post("/v1/generations", json={"prompt": "second"}).json()["id"]
        deadline = time.monotonic() + 10
        while c.get(f"/v1/generations/{running}").json()["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.delete(f"/v1/generations/{queued}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = c.delete(f"/v1/generations/{running}")
        assert r.status_code == 409 and "running" in r.json()["detail"]
        assert c.delete("/v1/generations/req_nope").status_code == 404


def test_a_crashed_generation_is_failed_with_its_reason(tmp_path, database_url):
    async def crashing(request):
        raise RuntimeError("generator replica died")

    settings = _settings(tmp_path, database_url)
    stores = _stores(settings)
    with TestClient(_app(settings, stores, crashing), headers=_auth(_key(stores))) as c:
        job = c.post("/v1/generations", json={"prompt": "A calm sea", "duration_s": 1}).json()
        done = _wait(c, job["id"])
    assert done["status"] == "failed"
    assert done["reason"] == "RuntimeError: generator replica died"
    assert done["video"] is None


def test_lost_generator_is_retried_then_succeeds(tmp_path, database_url, tiny_generator):
    calls = []
    real = _real(tiny_generator)

    async def flaky(request):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("replica went away")
        return await real(request)

    settings = _settings(tmp_path, database_url)
    stores = _stores(settings)
    with TestClient(_app(settings, stores, flaky), headers=_auth(_key(stores))) as c:
        job = c.post("/v1/generations", json={"prompt": "A calm sea", "duration_s": 1}).json()
        done = _wait(c, job["id"])
    assert done["status"] == "succeeded" and len(calls) == 2


def test_a_job_survives_an_ingress_restart(tmp_path, database_url, tiny_generator):
    """Replica 1 takes the job and dies mid-generation; replica 2 finds it when the lease lapses and finishes it."""
    gate = asyncio.Event()

    async def stuck(request):
        await gate.wait()

    settings = _settings(tmp_path, database_url, job_lease_s=1.0)
    stores = _stores(settings)
    key = _key(stores)
    with TestClient(_app(settings, stores, stuck), headers=_auth(key)) as first:
        job_id = first.post("/v1/generations", json={"prompt": "A calm sea", "duration_s": 1}).json()["id"]
        deadline = time.monotonic() + 10
        while first.get(f"/v1/generations/{job_id}").json()["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    # replica 1 is gone; its lease on the job still stands for up to a second
    with TestClient(_app(settings, stores, _real(tiny_generator)), headers=_auth(key)) as second:
        done = _wait(second, job_id, timeout=60)
    assert done["status"] == "succeeded", done
    from kinora.stores import jobs as job_store

    with stores.engine.connect() as conn:
        assert job_store.get_job(conn=conn, job_id=job_id).attempts == 2


def test_healthz_needs_no_key_and_openapi_documents_errors(env):
    assert env.client.get("/healthz", headers={"Authorization": ""}).json()["status"] == "ok"
    spec = env.client.get("/openapi.json").json()
    post = spec["paths"]["/v1/generations"]["post"]["responses"]
    assert {"202", "401", "403", "422", "429"} <= set(post)
    assert {"401", "404", "409"} <= set(spec["paths"]["/v1/generations/{job_id}"]["delete"]["responses"])
    assert "/v1/videos/{video_id}" in spec["paths"]


def test_remix_records_its_parent_and_inherits_cameo_consent(env):
    from kinora.provenance.c2pa_manifest import read_manifest
    from kinora.provenance.certs import load_signer_material
    from kinora.stores import cameos as cameo_store
    from models.media import read_frames

    c = env.client
    parent = _wait(c, c.post("/v1/generations", json={"prompt": "@alice waving", "cameos": ["alice"], "duration_s": 1,
                                                       "seed": 4}).json()["id"])
    assert parent["status"] == "succeeded"
    pid = parent["video"]["id"]
    bob = _key(env.stores, user="bob")
    remix = _wait(c, c.post("/v1/generations", json={"prompt": "now it snows", "remix_of": pid, "duration_s": 1, "seed": 4},
                            headers=_auth(bob)).json()["id"], headers=_auth(bob))
    assert remix["status"] == "succeeded", remix
    from kinora.stores import catalog

    with env.stores.engine.connect() as conn:
        child = catalog.get_video(conn=conn, video_id=remix["video"]["id"])
        mother = catalog.get_video(conn=conn, video_id=pid)
    assert child.cameo_ids == ["cam_alice"]  # the remix shows alice too, so her consent was checked for bob
    root = load_signer_material(env.settings.provenance, env.settings.cert_dir).root_pem
    report = read_manifest(env.stores.media.path(child.media_key), trust_anchors_pem=root)
    assert report.validation_state == "Trusted"
    assert "c2pa.edited" in report.actions and len(report.ingredients) == 1
    a = read_frames(env.stores.media.path(child.media_key))
    b = read_frames(env.stores.media.path(mother.media_key))
    assert a.shape == b.shape and not (a == b).all()
    # alice withdraws: nobody may remix the video that shows her
    with env.stores.engine.begin() as conn:
        cameo_store.revoke_cameo(conn=conn, cameo_id="cam_alice")
    r = c.post("/v1/generations", json={"prompt": "again", "remix_of": pid, "duration_s": 1}, headers=_auth(bob))
    assert r.status_code == 403 and "@alice" in r.json()["reason"] and "revoked" in r.json()["reason"]
    r = c.post("/v1/generations", json={"prompt": "again", "remix_of": "vid_nope", "duration_s": 1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "remix_of"
