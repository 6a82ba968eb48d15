"""Cameos over HTTP (in-process TestClient, real tiny generator): register with a liveness
challenge, permissions, approvals, restrictions, revocation and the feed, draft approval, removal
of a use, the follow graph and the consent sweep."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from kinora.settings import Settings


def _auth(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api(tmp_path, tiny_generator, database_url):
    """A client over a seeded store and one API key per seed user (``api.h['bob']`` are bob's headers)."""
    from kinora.auth import create_key
    from kinora.provenance.certs import load_signer_material
    from kinora.seed import seed
    from kinora.stores.bundle import Stores
    from serving.api import create_api

    settings = Settings(home=tmp_path / "home", serve={"recovery_interval_s": 0.2},
                        consent={"recording_max_bytes": 400_000},
                        store={"database_url": database_url} if database_url else {})
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        keys = {u: create_key(conn=conn, user_handle=u, name="t")[1]
                for u in ("studio", "alice", "bob", "carol", "dave", "erin")}

    async def generate(request):
        return (await asyncio.to_thread(tiny_generator.generate, [request]))[0]

    app = create_api(settings=settings, stores=stores, generate=generate,
                     material=load_signer_material(settings.provenance, settings.cert_dir))

    class Api:
        pass

    a = Api()
    a.settings, a.stores, a.h = settings, stores, {u: _auth(k) for u, k in keys.items()}
    with TestClient(app) as client:
        a.client = client
        yield a


def _generate(api, user: str, prompt: str, cameos: list[str]) -> dict:
    """Submit, wait for the job to finish, return its final body."""
    r = api.client.post("/v1/generations", headers=api.h[user],
                        json={"prompt": prompt, "cameos": cameos, "duration_s": 1, "seed": 1})
    assert r.status_code == 202, r.json()
    job_id = r.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body = api.client.get(f"/v1/generations/{job_id}", headers=api.h[user]).json()
        if body["status"] not in {"queued", "running"}:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {body['status']}")


def _feed_ids(api, user: str = "erin") -> tuple[set[str], int]:
    r = api.client.get("/v1/feed", headers=api.h[user], params={"limit": 50})
    assert r.status_code == 200, r.json()
    return {v["id"] for v in r.json()["videos"]}, r.json()["withheld"]


def _ledger_actions(api, cameo_id: str) -> list[str]:
    from kinora.stores import cameos as cameo_store

    with api.stores.engine.connect() as conn:
        return [e.action for e in cameo_store.list_ledger(conn=conn, cameo_id=cameo_id)]


# -- registration --------------------------------------------------------------------------------
def test_register_a_cameo_over_http_and_every_refusal(api):
    from kinora.trust.cameos import synthetic_recording

    c, h = api.client, api.h["erin"]
    r = c.post("/v1/cameos/challenges", headers=h, json={"handle": "erin", "kind": "person"})
    assert r.status_code == 201, r.json()
    ch = r.json()
    assert len(ch["digits"]) == api.settings.consent.challenge_digits and ch["upload_url"].endswith("/recording")

    assert c.post(ch["upload_url"], headers=h, content=b"").status_code == 422  # empty body
    refused = c.post(ch["upload_url"], headers=h, content=b"not a video at all" * 100)
    assert refused.status_code == 422 and "detail" in refused.json()  # the verifier cannot read it
    too_big = c.post(ch["upload_url"], headers=h, content=b"\0" * 400_001)
    assert too_big.status_code == 413 and "400000" in too_big.json()["detail"]
    assert c.post(ch["upload_url"], headers=api.h["alice"], content=synthetic_recording()).status_code == 404  # not hers: not revealed

    recording = synthetic_recording()
    ok = c.post(ch["upload_url"], headers=h, content=recording,
                params={"permission": "approved", "restriction": ["no political content", "never in swimwear"]})
    assert ok.status_code == 201, ok.json()
    cameo = ok.json()
    assert cameo["verified"] and cameo["owner"] == "erin" and cameo["permission"] == "approved"
    assert cameo["restrictions"] == ["no political content", "never in swimwear"]
    assert any("face" in item for item in cameo["not_checked"])  # the local verifier says what it skipped

    replay = c.post(ch["upload_url"], headers=h, content=recording)
    assert replay.status_code == 409 and "already used" in replay.json()["detail"]
    assert c.post("/v1/cameos/challenges/chl_nope/recording", headers=h, content=recording).status_code == 404
    taken = c.post("/v1/cameos/challenges", headers=api.h["bob"], json={"handle": "erin"})
    assert taken.status_code == 409

    got = c.get("/v1/cameos/erin", headers=h)
    assert got.status_code == 200 and got.json()["permission"] == "approved"
    assert c.get("/v1/cameos/erin", headers=api.h["bob"]).status_code == 403
    assert c.get("/v1/cameos/nobody", headers=h).status_code == 404


def test_cameo_endpoints_need_a_key_and_the_scope(api):
    from kinora.auth import create_key

    with api.stores.engine.begin() as conn:
        read_only = create_key(conn=conn, user_handle="bob", name="ro", scopes=["cameos:read"])[1]
    c = api.client
    assert c.post("/v1/cameos/challenges", json={"handle": "bob2"}).status_code == 401
    r = c.post("/v1/cameos/challenges", headers=_auth(read_only), json={"handle": "bob2"})
    assert r.status_code == 403 and "cameos:write" in r.json()["detail"]
    assert c.get("/v1/cameos/bob", headers=_auth(read_only)).status_code == 200
    assert c.patch("/v1/cameos/bob", headers=_auth(read_only), json={"permission": "everyone"}).status_code == 403
    assert c.get("/v1/feed", headers=_auth(read_only)).status_code == 403
    assert c.put("/v1/follows/alice", headers=_auth(read_only)).status_code == 403


def test_only_the_owner_changes_a_cameo(api):
    before = _ledger_actions(api, "cam_bob")
    r = api.client.patch("/v1/cameos/bob", headers=api.h["alice"], json={"permission": "everyone"})
    assert r.status_code == 403 and "owner" in r.json()["detail"]
    assert api.client.post("/v1/cameos/bob/revoke", headers=api.h["alice"]).status_code == 403
    assert api.client.put("/v1/cameos/bob/approved", headers=api.h["alice"], json={"users": ["alice"]}).status_code == 403
    assert api.client.patch("/v1/cameos/bob", headers=api.h["bob"], json={"permission": "sometimes"}).status_code == 422
    assert _ledger_actions(api, "cam_bob") == before  # nothing written by any refusal


# -- permissions, restrictions, approvals ---------------------------------------------------------
def test_a_requester_who_is_not_approved_is_refused_until_approved(api):
    body = {"prompt": "Bob juggling oranges", "cameos": ["bob"], "duration_s": 1}
    refused = api.client.post("/v1/generations", headers=api.h["alice"], json=body)
    assert refused.status_code == 403
    assert refused.json()["stage"] == "consent" and "not one of them" in refused.json()["reason"]

    r = api.client.put("/v1/cameos/bob/approved", headers=api.h["bob"], json={"users": ["studio", "alice"]})
    assert r.status_code == 200 and r.json()["approved"] == ["alice", "studio"]
    assert _ledger_actions(api, "cam_bob")[-1] == "approve_users"
    political = api.client.post("/v1/generations", headers=api.h["alice"],
                                json={**body, "prompt": "Bob giving a speech at an election rally"})
    assert political.status_code == 403 and "no political content" in political.json()["reason"]
    done = _generate(api, "alice", body["prompt"], ["bob"])
    assert done["status"] == "succeeded" and done["video"]["id"] in _feed_ids(api)[0]


def test_revocation_removes_every_video_from_the_feed_at_once(api):
    done = _generate(api, "carol", "Carol waving from a tram", ["carol"])
    assert done["status"] == "succeeded", done
    vid = done["video"]["id"]
    assert vid in _feed_ids(api)[0]
    assert api.client.get(f"/v1/videos/{vid}", headers=api.h["erin"]).status_code == 200

    r = api.client.post("/v1/cameos/carol/revoke", headers=api.h["carol"])
    assert r.status_code == 200 and r.json()["videos_withdrawn"] == 1
    assert vid not in _feed_ids(api)[0]
    for path in (f"/v1/videos/{vid}", f"/v1/videos/{vid}.mp4", f"/v1/videos/{vid}.jpg"):
        assert api.client.get(path, headers=api.h["erin"]).status_code == 404
    uses = api.client.get("/v1/cameos/carol/uses", headers=api.h["carol"]).json()
    assert [(u["video_id"], u["use_status"], u["video_state"]) for u in uses] == [(vid, "withdrawn", "unpublished")]
    again = api.client.post("/v1/generations", headers=api.h["carol"],
                            json={"prompt": "Carol again", "cameos": ["carol"], "duration_s": 1})
    assert again.status_code == 403 and "revoked" in again.json()["reason"]
    assert _ledger_actions(api, "cam_carol")[-2:] == ["use", "revoke"]


def test_approve_each_video_keeps_a_draft_out_of_the_feed_until_the_owner_approves(api):
    r = api.client.patch("/v1/cameos/alice", headers=api.h["alice"], json={"require_approval": True})
    assert r.status_code == 200 and r.json()["require_approval"] is True
    done = _generate(api, "bob", "Alice riding a bicycle", ["alice"])
    assert done["status"] == "succeeded" and "awaiting approval" in done["reason"]
    vid = done["video"]["id"]
    assert vid not in _feed_ids(api)[0]
    assert api.client.get(f"/v1/videos/{vid}", headers=api.h["erin"]).status_code == 404

    uses = api.client.get("/v1/cameos/alice/uses", headers=api.h["alice"]).json()
    assert [(u["video_id"], u["use_status"], u["video_state"], u["requester"]) for u in uses] == [
        (vid, "pending", "draft", "bob")]
    assert api.client.post(f"/v1/cameos/alice/uses/{vid}/approve", headers=api.h["bob"]).status_code == 403
    ok = api.client.post(f"/v1/cameos/alice/uses/{vid}/approve", headers=api.h["alice"])
    assert ok.status_code == 200 and ok.json()["published"] is True
    assert vid in _feed_ids(api)[0]
    assert api.client.post(f"/v1/cameos/alice/uses/{vid}/approve", headers=api.h["alice"]).status_code == 409

    removed = api.client.delete(f"/v1/cameos/alice/uses/{vid}", headers=api.h["alice"])
    assert removed.status_code == 200 and removed.json()["use_status"] == "removed"
    assert vid not in _feed_ids(api)[0]
    assert api.client.get(f"/v1/videos/{vid}", headers=api.h["erin"]).status_code == 404
    assert api.client.delete("/v1/cameos/alice/uses/vid_unknown", headers=api.h["alice"]).status_code == 404
    assert _ledger_actions(api, "cam_alice")[-3:] == ["use", "approve_use", "remove_use"]


def test_an_unfollow_withholds_at_serve_time_and_the_sweep_unpublishes_with_the_reason(api):
    from kinora.stores import catalog
    from kinora.trust.sweep import find_lapsed, withdraw

    done = _generate(api, "studio", "Dave surfing at dawn", ["dave"])  # dave's cameo is for mutuals; studio is one
    assert done["status"] == "succeeded", done
    vid = done["video"]["id"]
    ids, withheld = _feed_ids(api)
    assert vid in ids and withheld == 0

    r = api.client.delete("/v1/follows/studio", headers=api.h["dave"])
    assert r.status_code == 200 and r.json()["was_following"] is True
    ids, withheld = _feed_ids(api)
    assert vid not in ids and withheld == 1  # still published in the catalog, but never served
    assert api.client.get(f"/v1/videos/{vid}", headers=api.h["erin"]).status_code == 404

    with api.stores.engine.begin() as conn:
        lapsed = find_lapsed(conn=conn, settings=api.settings)
        assert [x.video_id for x in lapsed] == [vid]
        assert withdraw(conn=conn, lapsed=lapsed) == 1
        video = catalog.get_video(conn=conn, video_id=vid)
    assert video.unpublished_at is not None and "mutual followers" in video.unpublished_reason
    assert _feed_ids(api) == (set(), 0)  # the catalog now agrees: nothing left to withhold
    uses = api.client.get("/v1/cameos/dave/uses", headers=api.h["dave"]).json()
    assert uses[0]["use_status"] == "withdrawn" and "consent sweep" in uses[0]["reason"]

    assert api.client.put("/v1/follows/studio", headers=api.h["dave"]).status_code == 200
    assert vid not in _feed_ids(api)[0]  # following again does not bring a withdrawn video back
    assert api.client.put("/v1/follows/nobody", headers=api.h["dave"]).status_code == 404


def test_deleting_a_cameo_erases_its_media_and_refuses_new_uses(api):
    from kinora.stores import cameos as cameo_store

    with api.stores.engine.connect() as conn:
        keys = [m["key"] for m in cameo_store.get_cameo(conn=conn, cameo_id="cam_rex").media]
    assert keys and all(api.stores.media.exists(k) for k in keys)
    r = api.client.delete("/v1/cameos/rex", headers=api.h["erin"])
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert not any(api.stores.media.exists(k) for k in keys)
    assert api.client.get("/v1/cameos/rex", headers=api.h["erin"]).status_code == 404
    refused = api.client.post("/v1/generations", headers=api.h["alice"],
                              json={"prompt": "Rex the dog on a beach", "cameos": ["rex"], "duration_s": 1})
    assert refused.status_code == 403 and "rex" in refused.json()["reason"]


def test_openapi_documents_the_cameo_endpoints(api):
    paths = api.client.get("/openapi.json").json()["paths"]
    for path, method in [("/v1/cameos/challenges", "post"), ("/v1/cameos/challenges/{challenge_id}/recording", "post"),
                         ("/v1/cameos/{handle}", "patch"), ("/v1/cameos/{handle}/approved", "put"),
                         ("/v1/cameos/{handle}/revoke", "post"), ("/v1/cameos/{handle}/uses", "get"),
                         ("/v1/cameos/{handle}/uses/{video_id}", "delete"), ("/v1/feed", "get"),
                         ("/v1/follows/{handle}", "delete")]:
        op = paths[path][method]
        assert "401" in op["responses"] and "403" in op["responses"], (path, method)
