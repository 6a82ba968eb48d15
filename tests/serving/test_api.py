"""The HTTP API in-process (FastAPI TestClient) over the real tiny generator: status codes and bodies."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from kinora.settings import Settings


def _api_client(tmp_path, generate):
    from kinora.provenance.certs import load_signer_material
    from kinora.seed import seed
    from kinora.stores.bundle import Stores
    from serving.api import create_api

    settings = Settings(home=tmp_path / "home", serve={"api_keys": ["test-key-123"]})
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn)

    api = create_api(settings=settings, stores=stores, generate=generate,
                     material=load_signer_material(settings.provenance, settings.cert_dir))
    return TestClient(api, headers={"Authorization": "Bearer test-key-123"})


@pytest.fixture
def client(tmp_path, tiny_generator):
    async def generate(request):
        return (await asyncio.to_thread(tiny_generator.generate, [request]))[0]

    with _api_client(tmp_path, generate) as c:
        yield c


def test_a_crashed_generation_is_failed_with_its_reason(tmp_path):
    async def crashing(request):
        raise RuntimeError("generator replica died")

    with _api_client(tmp_path, crashing) as c:
        job = c.post("/v1/generations", json={"requester": "alice", "prompt": "A calm sea", "duration_s": 1}).json()
        done = _wait(c, job["id"])
    assert done["status"] == "failed"
    assert done["reason"] == "RuntimeError: generator replica died"
    assert done["video"] is None


def _wait(client, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/generations/{job_id}").json()
        if body["status"] not in {"queued", "running"}:
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {body['status']}")


def test_submit_poll_and_fetch(client):
    r = client.post("/v1/generations", json={"requester": "alice", "prompt": "A red kite over dunes", "duration_s": 1, "seed": 3})
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and job["id"].startswith("req_")
    done = _wait(client, job["id"])
    assert done["status"] == "succeeded", done
    video = done["video"]
    assert video["duration_s"] == 1.0 and video["model_family"] == "ltx2"
    assert video["provenance"]["c2pa_state"] in {"Valid", "Trusted"} and len(video["provenance"]["sha256"]) == 64
    mp4 = client.get("/" + video["url"].split("://", 1)[1].split("/", 1)[1])
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"


def test_idempotency_key_returns_the_same_job(client):
    body = {"requester": "alice", "prompt": "A quiet pond", "duration_s": 1, "seed": 1}
    first = client.post("/v1/generations", json=body, headers={"Idempotency-Key": "abc"})
    second = client.post("/v1/generations", json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    _wait(client, first.json()["id"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompt": "hi"}, "requester"),
        ({"requester": "alice", "prompt": ""}, "prompt"),
        ({"requester": "alice", "prompt": "hi", "duration_s": 99}, "duration_s"),
        ({"requester": "alice", "prompt": "hi", "resolution": "4096x4096"}, "resolution"),
        ({"requester": "alice", "prompt": "x" * 5000}, "prompt"),
        ({"requester": "nobody", "prompt": "hi"}, "requester"),
        ({"requester": "alice", "prompt": "hi", "colour": "red"}, "colour"),
        ({"requester": "alice", "prompt": "hi", "fps": 30}, "fps"),
    ],
)
def test_malformed_bodies_get_422_naming_the_field(client, body, field):
    r = client.post("/v1/generations", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field


def test_refusals_are_403_with_the_reason_and_stored(client):
    r = client.post("/v1/generations", json={"requester": "studio", "prompt": "hi", "cameos": ["carol"]})
    assert r.status_code == 403
    assert r.json()["stage"] == "consent" and "only_me" in r.json()["reason"]
    assert client.get(f"/v1/generations/{r.json()['id']}").json()["status"] == "blocked"
    r = client.post("/v1/generations", json={"requester": "alice", "prompt": "Glimmer Cola commercial"})
    assert r.status_code == 403 and r.json()["stage"] == "rights" and "Glimmer Cola" in r.json()["reason"]


def test_unknown_job_is_404(client):
    r = client.get("/v1/generations/req_nope")
    assert r.status_code == 404 and "req_nope" in r.json()["detail"]


def test_missing_key_is_401(client):
    r = client.get("/v1/generations/req_nope", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_healthz(client):
    assert client.get("/healthz").json()["status"] == "ok"
