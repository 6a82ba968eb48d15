"""A small Kinora data home whose every dashboard number was counted by hand.

Engagement (lake ``events``; videos v1 of 10 s and v2 of 4 s are known, v3's length is not):
  Fri 20 Nov: u1 sees v1 (pos 0) and v2 (pos 1) in request A, watches v1 9.5 s and likes it (the
  like arrives twice, from a retried batch), watches v2 1 s; u2 sees v1 (0) and v3 (1) in B,
  watches v1 9 s, shares it, watches v3 5 s.
  Sat 21 Nov: u1 sees v2 (0) in C, watches it 4 s and remixes it; u3 sees v1 (0) in D.
  Tue 24 Nov (the next week): u2 watches v1 2 s.
  Kinora's feed served A and B with ranker rk-1, C by freshness (no ranker); D is an app's own.
Generations (T0 = Fri 20 Nov 12:00): campaign c1: r1, r2 published (2 s and 4 s of generation,
  on cpu and cuda:0), r3 blocked by consent then rerun and published an hour later (3 s, cuda:0),
  r4 blocked by rights (Captain Comet, Moonbeam Studios), r5 failed after 1 s; campaign c2: r6
  blocked by consent.
Catalog: v4 remixes v1, v5 remixes v4 (both 21 Nov); v6 and v7 published 20 Nov and taken down
  21 Nov (a rights re-screen, a consent sweep). Marks: v4, v5, v7 carry the invisible mark's
  content id; C2PA Trusted on all but v5 (invalid). Cameos: @alice (everyone) used by v4
  (active) and v5 (pending); @bob (only me) used by v6 (withdrawn), revoked 21 Nov.
Verify look-ups: intact and tampered (both v4) and unknown, on 21-22 Nov.
Ranker registry: rk-1 (NDCG@10 0.55) promoted, then rk-2 (0.56), in production.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

D1 = datetime(2026, 11, 20, 10, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
D5 = D1 + timedelta(days=4)
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def ev(eid, ts, user, video, kind, batch="b1", watch=None, pos=None, req=None):
    return dict(event_id=eid, ts=ts, user_id=user, video_id=video, event_type=kind, watch_ms=watch, position=pos,
                request_id=req, batch_id=batch)


def gen(rid, status, campaign="c1", ts=T0, generate_s=None, stamp_s=None, device=None, reason=None):
    return dict(request_id=rid, campaign_id=campaign, requester_id="u", source="campaign", status=status, reason=reason,
                video_id=None, model_family=None, model_version=None, seed=1, duration_s=2.0, device=device, consent_s=0.01,
                rights_s=0.02, generate_s=generate_s, stamp_s=stamp_s, publish_s=None, ts=ts)


def write_engagement(lake) -> None:
    lake.append("videos", [dict(video_id=v, request_id=f"r{v}", creator_id="c", campaign_id=None, prompt="p",
                                duration_ms=ms, width=256, height=256, model_family="ltx2", model_version="t",
                                c2pa_state="Valid", cameo_count=0, published_at=D1 - timedelta(days=1))
                           for v, ms in (("v1", 10_000), ("v2", 4_000))])
    m = lambda k: D1 + timedelta(minutes=k)  # noqa: E731
    lake.append("events", [
        ev("e1", m(0), "u1", "v1", "impression", pos=0, req="A"), ev("e2", m(0), "u1", "v2", "impression", pos=1, req="A"),
        ev("e3", m(1), "u1", "v1", "view", watch=9_500), ev("e4", m(2), "u1", "v1", "like"),
        ev("e5", m(3), "u1", "v2", "view", watch=1_000),
        ev("e6", m(60), "u2", "v1", "impression", pos=0, req="B"), ev("e7", m(60), "u2", "v3", "impression", pos=1, req="B"),
        ev("e8", m(61), "u2", "v1", "view", watch=9_000), ev("e9", m(62), "u2", "v1", "share"),
        ev("e10", m(63), "u2", "v3", "view", watch=5_000),
        ev("e11", D2, "u1", "v2", "impression", pos=0, req="C"), ev("e12", D2 + timedelta(minutes=1), "u1", "v2", "view", watch=4_000),
        ev("e13", D2 + timedelta(minutes=2), "u1", "v2", "remix"),
        ev("e14", D2 + timedelta(hours=1), "u3", "v1", "impression", pos=0, req="D"),
        ev("e15", D5, "u2", "v1", "view", watch=2_000),
    ])
    lake.append("events", [ev("e4", D1 + timedelta(minutes=2), "u1", "v1", "like", batch="b2")])  # the retried like
    lake.append("feed_requests", [
        dict(request_id=r, first_position=0, ts=ts, user_id=u, model_version=v, personalized=True, steered=False,
             candidates=100, served=2) for r, ts, u, v in (("A", m(0), "u1", "rk-1"), ("B", m(60), "u2", "rk-1"),
                                                           ("C", D2, "u1", None))])


def write_generations(lake) -> None:
    lake.append("generations", [
        gen("r1", "published", generate_s=2.0, stamp_s=0.5, device="cpu"),
        gen("r2", "published", generate_s=4.0, stamp_s=1.5, device="cuda:0"),
        gen("r3", "blocked_consent", reason="cameo @carol may be used by its owner only"),
        gen("r4", "blocked_rights", reason="names a work whose holder opted out: Captain Comet (Moonbeam Studios)"),
        gen("r5", "failed", generate_s=1.0, device="cpu", reason="generation: RuntimeError: out of memory"),
        gen("r6", "blocked_consent", campaign="c2", reason="unknown cameo @zed"),
        gen("r3", "published", ts=T0 + timedelta(hours=1), generate_s=3.0, stamp_s=1.0, device="cuda:0"),
    ])
    dec = lambda rid, stage, outcome, **kw: dict(request_id=rid, campaign_id=kw.pop("campaign", "c1"), stage=stage,  # noqa: E731
                                                 outcome=outcome, reason="r", ts=T0, **kw)
    lake.append("decisions", [
        dec("r1", "consent", "allow"), dec("r1", "rights", "allow"), dec("r4", "consent", "allow"),
        dec("r4", "rights", "block", holder="Moonbeam Studios", work="Captain Comet"),
        dec("r6", "consent", "block", campaign="c2"),
    ])
    lake.append("verifications", [
        dict(verification_id=f"ver{i}", ts=D2 + timedelta(hours=i * 12), source="api", verdict=v, c2pa_state=c,
             watermark_found=w, video_id=vid, sha256="0" * 64)
        for i, (v, c, w, vid) in enumerate([("intact", "trusted", True, "v4"), ("tampered", "invalid", True, "v4"),
                                            ("unknown", "absent", False, None)])])


def write_catalog(folder: Path) -> None:
    from kinora.stores.catalog_export import EXPORTS

    def video(vid, published, *, remix_of=None, content_id=None, c2pa="Trusted", down=None, reason=None, duration=8000):
        return dict(video_id=vid, creator_id="c", campaign_id="c1", prompt=f"prompt {vid}", duration_ms=duration, width=256,
                    height=256, model_family="ltx2", model_version="t", created_at=published, published_at=published,
                    unpublished_at=down, unpublished_reason=reason, remix_of=remix_of, content_id=content_id,
                    c2pa_state=c2pa, cameo_count=0)
    rows = {
        "videos": [video("v1", D1 - timedelta(days=1), content_id=1, duration=10_000),
                   video("v2", D1 - timedelta(days=1), content_id=2, duration=4_000),
                   video("v4", D2, remix_of="v1", content_id=4), video("v5", D2, remix_of="v4", content_id=5, c2pa="invalid"),
                   video("v6", D1, down=D2, reason="rights rescreen: names a blocked work"),
                   video("v7", D1, content_id=7, down=D2, reason="consent sweep: cameo @bob was revoked")],
        "users": [dict(user_id="c", handle="creator", created_at=D1 - timedelta(days=30))],
        "cameos": [dict(cameo_id="cam1", handle="alice", owner_id="ua", kind="person", permission="everyone", verified=True,
                        created_at=D1 - timedelta(days=2), revoked_at=None, deleted_at=None),
                   dict(cameo_id="cam2", handle="bob", owner_id="ub", kind="person", permission="only_me", verified=True,
                        created_at=D1 - timedelta(days=2), revoked_at=D2, deleted_at=None)],
        "cameo_uses": [dict(video_id="v4", cameo_id="cam1", requester_id="u1", status="active", reason=None, created_at=D2,
                            decided_at=None),
                       dict(video_id="v5", cameo_id="cam1", requester_id="u2", status="pending", reason=None, created_at=D2,
                            decided_at=None),
                       dict(video_id="v6", cameo_id="cam2", requester_id="u1", status="withdrawn", reason="revoked",
                            created_at=D1, decided_at=D2)],
        "consent_ledger": [dict(seq=1, ts=D1 - timedelta(days=2), cameo_id="cam1", actor_id="ua", action="grant"),
                           dict(seq=2, ts=D1 - timedelta(days=2), cameo_id="cam2", actor_id="ub", action="grant"),
                           dict(seq=3, ts=D2, cameo_id="cam2", actor_id="ub", action="revoke")],
        "rights_works": [], "rights_rescreens": [],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in rows.items():
        pq.write_table(pa.Table.from_pylist(data, schema=EXPORTS[name][2]), folder / f"{name}.parquet")


def write_registry(models: Path) -> None:
    for i, (version, ndcg) in enumerate((("rk-1", 0.55), ("rk-2", 0.56))):
        folder = models / "versions" / version
        folder.mkdir(parents=True)
        card = {"version": version, "created_at": (D1 - timedelta(days=2 - i)).isoformat(), "train_impressions": 1000,
                "metrics": {"ndcg@10": ndcg, "heads": {h: {"auc": 0.7} for h in ("watch", "like", "share", "remix", "negative")},
                            "baselines": {"lightgbm_lambdarank": {"ndcg@10": 0.54}, "most_popular": {"ndcg@10": 0.5}}}}
        (folder / "card.json").write_text(json.dumps(card))
    (models / "registry.json").write_text(json.dumps({"production": "rk-2", "history": [
        {"version": "rk-1", "previous": None, "reason": "first", "at": (D1 - timedelta(days=2)).isoformat()},
        {"version": "rk-2", "previous": "rk-1", "reason": "better", "at": (D1 - timedelta(days=1)).isoformat()}]}))


def build_home(home: Path) -> dict:
    """Write the fixture into ``home`` (laid out as a data home) and refresh its analytics."""
    from dashboards import layer
    from kinora.stores.lake import Lake

    lake = Lake(home / "lake")
    write_engagement(lake)
    write_generations(lake)
    write_catalog(home / "analytics" / "catalog")
    write_registry(home / "models" / "ranking")
    report = layer.refresh(lake=lake.root, root=home / "analytics", ranking_dir=home / "models" / "ranking")
    return {"lake": lake.root, "root": home / "analytics", "report": report}


@pytest.fixture
def fixture_home(tmp_path):
    home = tmp_path / "home"
    return build_home(home) | {"home": home}


@pytest.fixture
def con(fixture_home):
    from dashboards import layer

    c = layer.connect(lake=fixture_home["lake"], root=fixture_home["root"])
    yield c
    c.close()


WINDOW = dict(start=datetime(2026, 11, 20, tzinfo=UTC), end=datetime(2026, 11, 22, tzinfo=UTC), campaigns=[],
              versions=[], cohorts=[], top=50)
