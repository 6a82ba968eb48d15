"""GET /v1/feed?user_id=: candidates, the production ranker, the rules, reasons, steering,
personalisation off, hides, impressions, hot reload."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import Counter

import polars as pl
import pytest
from fastapi.testclient import TestClient

from datasets.catalog_rows import insert_world
from datasets.simulator import TOPIC_WORDS
from kinora.feed import _assemble
from kinora.ranking import pipeline
from kinora.ranking.registry import Registry
from kinora.settings import Settings


@pytest.fixture(scope="module")
def feed_env(tmp_path_factory, sim_files):
    """A home whose catalog holds the simulated videos, with a ranker trained on their history in production."""
    from kinora.auth import create_key
    from kinora.provenance.certs import load_signer_material
    from kinora.seed import seed
    from kinora.stores.bundle import Stores
    from serving.api import create_api

    home = tmp_path_factory.mktemp("feedhome")
    settings = Settings(home=home, ranking={"epochs": 2, "batch_size": 1024, "reload_check_s": 3600,
                                            "impression_flush_s": 3600})
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        key = create_key(conn=conn, user_handle="alice", name="feed", scopes=["feed:read", "events:write"])[1]
    world = sim_files["world"]
    insert_world(stores.engine, world, now=dt.datetime.now(dt.timezone.utc))
    folder, _ = pipeline.train_model(sim_files["events"], sim_files["videos"], settings, with_baselines=False)
    Registry(settings.ranking_dir).promote(folder.name, "test")

    async def no_generation(request):  # the feed never generates
        raise AssertionError("not called")

    api = create_api(settings=settings, stores=stores, generate=no_generation,
                     material=load_signer_material(settings.provenance, settings.cert_dir))
    with TestClient(api, headers={"Authorization": f"Bearer {key}"}) as client:
        yield {"client": client, "settings": settings, "stores": stores, "world": world, "api": api,
               "version": folder.name}


def _feed(env, **params):
    r = env["client"].get("/v1/feed", params={"limit": 20, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_ranked_page_follows_the_rules_and_says_why(feed_env):
    user = str(feed_env["world"].user_ids[3])
    page = _feed(feed_env, user_id=user)
    assert page["model_version"] == feed_env["version"] and page["candidates"] >= 500
    vids = page["videos"]
    assert len(vids) == 20 and [v["position"] for v in vids] == list(range(20))
    assert all(v["reasons"] for v in vids)
    creators = [v["creator"] for v in vids]
    assert not any(creators[i] == creators[i + 1] == creators[i + 2] for i in range(len(creators) - 2))
    settings = feed_env["settings"]
    cut = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=settings.ranking.fresh_hours)
    fresh = sum(dt.datetime.fromisoformat(v["published_at"]).replace(tzinfo=dt.timezone.utc) >= cut for v in vids)
    assert fresh >= math.ceil(settings.ranking.fresh_share * 20)
    assert sum(any(r.startswith("fresh") for r in v["reasons"]) for v in vids) == fresh
    # scores descend within the rule-free stretches: the first item is the best-scored non-fresh or fresh pick
    assert vids[0]["score"] >= min(v["score"] for v in vids)

    second = _feed(feed_env, user_id=user, cursor=page["next_cursor"])
    assert [v["position"] for v in second["videos"]] == list(range(20, 40))
    assert not {v["id"] for v in vids} & {v["id"] for v in second["videos"]}
    assert second["request_id"] == page["request_id"]
    bad = feed_env["client"].get("/v1/feed", params={"user_id": user, "cursor": "req_nope.20"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "cursor"


def test_personalisation_off_gives_everyone_the_same_feed(feed_env):
    a, b = (str(u) for u in feed_env["world"].user_ids[[5, 6]])
    plain_a = [v["id"] for v in _feed(feed_env, user_id=a, personalized="false")["videos"]]
    plain_b = [v["id"] for v in _feed(feed_env, user_id=b, personalized="false")["videos"]]
    assert plain_a == plain_b
    mine_a = [v["id"] for v in _feed(feed_env, user_id=a)["videos"]]
    mine_b = [v["id"] for v in _feed(feed_env, user_id=b)["videos"]]
    assert mine_a != mine_b
    assert feed_env["client"].get("/v1/feed", params={"personalized": "false"}).status_code == 422  # needs user_id


def _topic_share(env, videos, topic: str) -> float:
    words = dict(TOPIC_WORDS)[topic]
    return sum(any(w in v["prompt"] for w in words) for v in videos) / len(videos)


def test_steer_moves_the_feed_towards_and_away_from_topics(feed_env):
    user = str(feed_env["world"].user_ids[8])
    plain = _feed(feed_env, user_id=user, limit=40)["videos"]
    steered = _feed(feed_env, user_id=user, limit=40, steer="more cooking, less pranks")["videos"]
    assert _topic_share(feed_env, steered, "cooking") >= max(3 * _topic_share(feed_env, plain, "cooking"),
                                                             _topic_share(feed_env, plain, "cooking") + 0.15)
    assert sum("prank" in v["prompt"] for v in steered) <= sum("prank" in v["prompt"] for v in plain)
    assert any("you asked for more cooking" in v["reasons"] for v in steered)
    away = _feed(feed_env, user_id=user, limit=40, steer="less cooking")["videos"]
    assert _topic_share(feed_env, away, "cooking") <= _topic_share(feed_env, plain, "cooking")
    assert _topic_share(feed_env, away, "cooking") < _topic_share(feed_env, steered, "cooking") - 0.15


def test_hidden_videos_never_come_back_and_impressions_are_logged(feed_env):
    user = str(feed_env["world"].user_ids[10])
    first = _feed(feed_env, user_id=user)
    top = first["videos"][0]["id"]
    r = feed_env["client"].post("/v1/events", json={"events": [{
        "event_id": f"hide-{user}", "ts": dt.datetime.now(dt.timezone.utc).isoformat(), "user_id": user,
        "video_id": top, "event_type": "hide"}]})
    assert r.status_code == 202, r.text
    again = _feed(feed_env, user_id=user, limit=100)
    assert top not in {v["id"] for v in again["videos"]}
    assert top not in {v["id"] for v in _feed(feed_env, user_id=user, personalized="false", limit=100)["videos"]}

    feed_env["api"].state.feed_ranking()["impressions"].flush()
    lake = pl.read_parquet(list((feed_env["settings"].lake_dir / "events").rglob("*.parquet")))
    shown = lake.filter((pl.col("event_type") == "impression") & (pl.col("request_id") == first["request_id"]))
    assert shown.sort("position")["video_id"].to_list() == [v["id"] for v in first["videos"]]
    assert shown["position"].to_list() == sorted(shown["position"].to_list()) and shown["user_id"].unique().to_list() == [user]
    pages = pl.read_parquet(list((feed_env["settings"].lake_dir / "feed_requests").rglob("*.parquet")))
    page = pages.filter(pl.col("request_id") == first["request_id"]).row(0, named=True)
    assert (page["model_version"], page["served"], page["user_id"]) == (first["model_version"], len(first["videos"]), user)


def test_a_new_production_version_is_swapped_in_without_failing_a_request(feed_env, sim_files):
    settings = feed_env["settings"]
    reg = Registry(settings.ranking_dir)
    other, _ = pipeline.train_model(sim_files["events"], sim_files["videos"],
                                    Settings(home=settings.home, ranking={"epochs": 1, "batch_size": 1024, "seed": 3}),
                                    with_baselines=False)
    ranker = feed_env["api"].state.feed_ranking()["ranker"]
    user = str(feed_env["world"].user_ids[12])
    statuses: list[int] = []
    versions: Counter = Counter()
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            r = feed_env["client"].get("/v1/feed", params={"user_id": user, "limit": 10})
            statuses.append(r.status_code)
            versions[r.json().get("model_version")] += 1

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(2):
            reg.promote(other.name, "test swap")
            assert ranker.check_now()
            reg.rollback()
            assert ranker.check_now()
    finally:
        stop.set()
        t.join()
    assert statuses and set(statuses) == {200}
    assert ranker.bundle.version == feed_env["version"]
    assert _feed(feed_env, user_id=user)["model_version"] == feed_env["version"]


def test_assembly_spaces_creators_and_keeps_the_fresh_share():
    # 30 items best first: the 12 best from one creator, only the 15 worst fresh
    creators_in = ["A" if i < 12 else f"c{i}" for i in range(30)]
    fresh_in = [i >= 15 for i in range(30)]
    out = _assemble(creators_in, fresh_in, limit=10, keep=30, fresh_share=0.2, max_run=2)
    assert sorted(out) == list(range(30))  # every item placed once
    creators = [creators_in[k] for k in out]
    assert not any(creators[i] == creators[i + 1] == creators[i + 2] for i in range(len(creators) - 2))
    for page in range(0, len(out), 10):
        if len(out[page:page + 10]) == 10:
            assert sum(fresh_in[k] for k in out[page:page + 10]) >= 2
    assert out[0] == 0 and out[1] == 1  # the best come first when the rules allow


def test_friends_cameo_is_a_candidate_and_a_revocation_between_two_requests_removes_it(feed_env):
    from kinora.stores import cameos as cameo_store
    from kinora.stores import users as user_store
    from kinora.stores.schema import videos

    stores = feed_env["stores"]
    world = feed_env["world"]
    vid, prompt = str(world.video_ids[40]), world.prompts[40]  # an old video, far down any feed on its own
    creator = f"usr_creator{world.video_creator[40]:05d}"
    with stores.engine.begin() as conn:
        user_store.add_follow(conn=conn, follower_id="usr_erin", followee_id="usr_alice")
        user_store.add_follow(conn=conn, follower_id="usr_alice", followee_id="usr_erin")
        conn.execute(videos.update().where(videos.c.id == vid).values(cameo_ids=["cam_alice"]))
        cameo_store.insert_uses(conn=conn, rows=[{"video_id": vid, "cameo_id": "cam_alice", "job_id": "req_x",
                                                  "requester_id": creator, "status": "active"}])
    page = _feed(feed_env, user_id="usr_erin", steer=prompt)
    [item] = [v for v in page["videos"] if v["id"] == vid]
    assert "a friend's cameo" in item["reasons"]

    with stores.engine.begin() as conn:  # revoked a moment ago; no sweep has run
        cameo_store.revoke_cameo(conn=conn, cameo_id="cam_alice")
    after = _feed(feed_env, user_id="usr_erin", steer=prompt, limit=100)
    assert vid not in {v["id"] for v in after["videos"]}
    with stores.engine.begin() as conn:
        conn.execute(videos.update().where(videos.c.id == vid).values(cameo_ids=[]))  # leave the module's world as it was
