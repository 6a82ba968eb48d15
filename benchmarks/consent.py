"""Benchmark: consent checks per second, revocation to feed exit, and the consent sweep.

    .venv/bin/python benchmarks/consent.py [--cameos 100000] [--grants 1000000] [--requests 10000]
                                           [--affected 10000] [--videos 60000] [--database-url URL]

Builds a fresh operational store (SQLite in a temporary home by default, or ``--database-url``)
holding ``--cameos`` verified cameos (40% everyone, 30% approved, 20% mutuals, 10% only_me; one in
five restricted "no political content"; 2% revoked), ``--grants`` per-person grants (rows of the
cameos' approval lists; every approved cameo has some), a follow graph, one signed ``grant``
ledger entry per cameo (sealed by :func:`kinora.trust.ledger.append`, so the chain verifies) and
``--videos`` live videos that use cameos. Rows are inserted in bulk: setup is not what is measured.
The process is pinned to one core before anything is measured.

Figures (all in the JSON on the last stdout line):

* ``checks``: ``--requests`` consent requests (one or two cameos, a requester, a prompt; about a
  third are refused: not approved, not mutual, only_me, revoked, restricted) decided by
  :func:`kinora.trust.consent.check_many` in one batch: checks/s. Baseline: the same requests
  decided one at a time by :func:`~kinora.trust.consent.check_consent` (what a gate checking each
  request separately costs), over the first ``--baseline-requests``; both must give the same
  decisions. Goal: at least 20,000 checks/s on one core.
* ``revocation``: ``--affected`` videos use one ``everyone`` cameo and are the newest in the feed.
  Its owner revokes (:func:`kinora.trust.cameos.revoke`, which unpublishes them in the same
  transaction) and the next feed page is served: seconds from the revoke call to a page with none
  of them. Goal: under 1 s.
* ``serve_time_lapse``: ``--affected`` other videos use a ``mutuals`` cameo; its owner unfollows
  their creator, which no video row records. The next feed serve must withhold all of them by
  itself (they are the newest candidates): its latency, against the latency of a feed page with
  nothing to withhold (baseline).
* ``sweep``: :func:`kinora.trust.sweep.find_lapsed` + :func:`~kinora.trust.sweep.withdraw` over
  every live video with a cameo (``--videos``; ``--affected`` of them lapsed by the unfollow).
  Goal: under 60 s. Baseline: checking videos one at a time (``check_videos`` per video) on a
  sample, scaled to the same count (marked ``extrapolated``).

Progress goes to stderr. Exits 0 when it measured (goals met or not: the JSON says), 1 on an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUBJECTS = ["a person", "two friends", "a chef", "a dancer", "a cyclist", "a grandmother", "a child", "a musician",
            "a painter", "a runner", "a diver", "a gardener"]
ACTIONS = ["walking", "laughing", "cooking noodles", "juggling oranges", "skateboarding", "reading aloud", "singing",
           "waving", "painting a mural", "fixing a bicycle", "feeding ducks", "building a sandcastle", "giving a speech at an election rally",
           "shaking hands with voters", "swimming in a bikini"]
PLACES = ["in a park", "on a night train", "at a wedding", "on a rainy street", "in a tiny kitchen", "on a beach",
          "in a snowy forest", "on a rooftop", "in a library", "at a market", "in a desert", "under neon lights"]
STYLES = ["golden hour", "handheld camera", "slow motion", "wide shot", "close-up", "film grain", "pastel colours",
          "dramatic lighting", "aerial view", "35mm"]


def random_prompt(rng: random.Random, i: int) -> str:
    """A distinct prompt per request (so no per-prompt cache flatters the figure); some break a restriction."""
    return (f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}, {rng.choice(STYLES)}, "
            f"{rng.choice(STYLES)}, take {i}")


def log(msg: str) -> None:
    print(f"[consent-bench] {msg}", file=sys.stderr, flush=True)


def _pin_one_core() -> int | None:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return core
    return None


def build(engine, settings, args, rng: random.Random) -> dict:
    """Bulk-insert users, cameos, grants (approval rows), follows, a sealed ledger and live videos."""
    import sqlalchemy as sa

    from kinora.stores import utcnow
    from kinora.stores.schema import (cameo_approvals, cameos, consent_ledger, follows, jobs, users, video_cameo_uses,
                                      videos)
    from kinora.trust import ledger
    from kinora.trust.ledger import LedgerKey

    now = utcnow()
    n_users = max(1000, args.cameos // 5)
    user_ids = [f"usr_b{i}" for i in range(n_users)]
    levels = ["everyone"] * 4 + ["approved"] * 3 + ["mutuals"] * 2 + ["only_me"]
    cams = []
    for i in range(args.cameos):
        cams.append(dict(id=f"cam_b{i}", handle=f"c{i}", owner_id=rng.choice(user_ids), kind="person",
                         permission=levels[i % 10], verified=True,
                         restrictions=["no political content"] if i % 5 == 0 else [], created_at=now,
                         revoked_at=now if i % 50 == 7 else None, require_approval=False, attestation=None, media=[],
                         deleted_at=None))
    approved_cams = [c for c in cams if c["permission"] == "approved"]
    per = max(1, -(-args.grants // max(1, len(approved_cams))))  # ceiling: the total reaches --grants
    approvals = []
    for c in approved_cams:
        for u in rng.sample(user_ids, min(per, n_users)):
            approvals.append(dict(cameo_id=c["id"], user_id=u, created_at=now))
            if len(approvals) >= args.grants:
                break
        if len(approvals) >= args.grants:
            break
    follow_set = set()
    while len(follow_set) < n_users * 10:
        a, b = rng.sample(user_ids, 2)
        follow_set.add((a, b))
        if rng.random() < 0.5:
            follow_set.add((b, a))
    log(f"inserting {n_users} users, {len(cams)} cameos, {len(approvals)} grants, {len(follow_set)} follows")

    # The revocation scenario's cameo and the unfollow scenario's cameo, with their creators.
    hot_owner, hot_creator, mut_owner, mut_creator = user_ids[:4]
    extra = [
        dict(cams[0], id="cam_hot", handle="hot", owner_id=hot_owner, permission="everyone", restrictions=[],
             revoked_at=None),
        dict(cams[0], id="cam_mut", handle="mut", owner_id=mut_owner, permission="mutuals", restrictions=[],
             revoked_at=None),
    ]
    follow_set |= {(mut_owner, mut_creator), (mut_creator, mut_owner)}
    with engine.begin() as conn:
        conn.execute(users.insert(), [dict(id=u, handle=u[4:], display_name=u, created_at=now) for u in user_ids])
        for i in range(0, len(cams), 20_000):
            conn.execute(cameos.insert(), cams[i:i + 20_000])
        conn.execute(cameos.insert(), extra)
        for i in range(0, len(approvals), 50_000):
            conn.execute(cameo_approvals.insert(), approvals[i:i + 50_000])
        conn.execute(follows.insert(), [dict(follower_id=a, followee_id=b, created_at=now) for a, b in follow_set])
        entries = [dict(ts=now, cameo_id=c["id"], actor_id=c["owner_id"], action="grant",
                        detail={"permission": c["permission"]}) for c in cams + extra]
        for i in range(0, len(entries), 20_000):
            conn.execute(consent_ledger.insert(), entries[i:i + 20_000])
    t0 = time.perf_counter()
    key = LedgerKey.for_settings(settings)
    with engine.begin() as conn:  # the first append seals every entry before it, in order
        ledger.append(conn=conn, key=key, cameo_id="cam_hot", actor_id=hot_owner, action="change", detail={})
    log(f"sealed {len(entries) + 1} ledger entries in {time.perf_counter() - t0:.1f} s")

    # Live videos: the newest --affected use @hot, the next --affected use @mut, the rest their creator's own cameo.
    everyone = [c for c in cams if c["permission"] == "everyone" and c["revoked_at"] is None and not c["restrictions"]]
    vids, uses, job_rows = [], [], []
    for i in range(args.videos):
        if i < args.affected:
            cameo_id, creator = "cam_hot", hot_creator
        elif i < 2 * args.affected:
            cameo_id, creator = "cam_mut", mut_creator
        else:
            c = everyone[i % len(everyone)]
            cameo_id, creator = c["id"], c["owner_id"]
        vid, job = f"vid_b{i:07d}", f"req_b{i:07d}"
        job_rows.append(dict(id=job, requester_id=creator, prompt="p", params={}, status="succeeded", video_id=vid,
                             created_at=now, updated_at=now, attempts=1))
        vids.append(dict(id=vid, job_id=job, creator_id=creator, prompt=random_prompt(rng, i), duration_ms=4000, width=256,
                         height=256, fps=24, model_family="ltx2", model_version="bench", seed=i, media_key="x",
                         thumbnail_key="x", sha256="0" * 64, provenance={}, cameo_ids=[cameo_id],
                         published_at=now - timedelta(seconds=i), created_at=now))
        uses.append(dict(video_id=vid, cameo_id=cameo_id, job_id=job, requester_id=creator, status="active",
                         created_at=now))
    with engine.begin() as conn:
        for i in range(0, len(vids), 10_000):
            conn.execute(jobs.insert(), job_rows[i:i + 10_000])
            conn.execute(videos.insert(), vids[i:i + 10_000])
            conn.execute(video_cameo_uses.insert(), uses[i:i + 10_000])
    # Requests: a third pick a (cameo, approved user) pair so 'approved' cameos are exercised both ways.
    usable = [c for c in cams]
    requests = []
    for i in range(args.requests):
        prompt = random_prompt(rng, i)
        if approvals and i % 3 == 0:
            a = approvals[rng.randrange(len(approvals))]
            requester, handles = a["user_id"], [f"c{a['cameo_id'][5:]}"]
        else:
            requester = rng.choice(user_ids)
            handles = [rng.choice(usable)["handle"]]
        if rng.random() < 0.3:
            handles.append(rng.choice(usable)["handle"])
        requests.append((requester, handles, prompt))
    with engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (users, cameos, cameo_approvals, follows, consent_ledger, videos)}
    return dict(requests=requests, counts=counts, hot_owner=hot_owner, mut_owner=mut_owner, mut_creator=mut_creator)


def run(args) -> dict:
    from kinora.feed import feed_page
    from kinora.settings import Settings
    from kinora.stores import users as user_store
    from kinora.stores.bundle import Stores
    from kinora.trust import cameos as cameo_service
    from kinora.trust.consent import ConsentQuery, check_consent, check_many, check_videos
    from kinora.trust.sweep import find_lapsed, withdraw

    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="kinora-consent-bench-"))
    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = Settings(home=home, **overrides)
    stores = Stores.open(settings)
    core = _pin_one_core()
    t0 = time.perf_counter()
    world = build(stores.engine, settings, args, rng)
    log(f"setup {time.perf_counter() - t0:.1f} s: {world['counts']}")
    max_cameos = settings.consent.max_cameos_per_video
    queries = [ConsentQuery(r, h, p, max_cameos) for r, h, p in world["requests"]]

    # -- checks/s: batch against one at a time -----------------------------------------------------
    with stores.engine.connect() as conn:
        check_many(conn=conn, queries=queries[:200])  # warm caches (SQLite pages, stemmer)
        t = time.perf_counter()
        batch = check_many(conn=conn, queries=queries)
        batch_s = time.perf_counter() - t
        n_base = min(args.baseline_requests, len(queries))
        t = time.perf_counter()
        single = [check_consent(conn=conn, requester_id=q.requester_id, cameo_handles=q.cameo_handles,
                                max_cameos=max_cameos, prompt=q.prompt) for q in queries[:n_base]]
        single_s = time.perf_counter() - t
    mismatches = sum(a.allowed != b.allowed or a.reason != b.reason for a, b in zip(batch, single))
    reasons: dict[str, int] = {}
    for d in batch:
        key = "allowed" if d.allowed else d.reason.split(" ", 2)[2].split(";")[0][:40] if d.reason.startswith("cameo @") else d.reason[:40]
        reasons[key] = reasons.get(key, 0) + 1
    checks = {
        "requests": len(queries), "checks_per_s": round(len(queries) / batch_s), "seconds": round(batch_s, 3),
        "allowed": sum(d.allowed for d in batch), "refused": sum(not d.allowed for d in batch),
        "baseline": {"method": "check_consent one request at a time", "requests": n_base,
                     "checks_per_s": round(n_base / single_s)},
        "ratio": round((len(queries) / batch_s) / (n_base / single_s), 2),
        "decisions_match_baseline": mismatches == 0, "goal_checks_per_s": 20_000,
        "goal_met": len(queries) / batch_s >= 20_000 and mismatches == 0,
    }
    log(f"checks: {checks['checks_per_s']}/s batch, {checks['baseline']['checks_per_s']}/s one at a time, "
        f"{checks['refused']} refused")

    def page(limit=20):
        with stores.engine.connect() as conn:
            t = time.perf_counter()
            p = feed_page(conn=conn, settings=settings, limit=limit)
            return p, time.perf_counter() - t

    base_times = [page()[1] for _ in range(5)]
    baseline_feed_s = sorted(base_times)[2]
    first, _ = page()
    hot_ids = {f"vid_b{i:07d}" for i in range(args.affected)}
    assert {v.id for v in first.videos} <= hot_ids, "the @hot videos should lead the feed"

    # -- revocation to feed exit ---------------------------------------------------------------------
    t = time.perf_counter()
    with stores.engine.begin() as conn:
        withdrawn = cameo_service.revoke(conn=conn, settings=settings, owner_id=world["hot_owner"], handle="hot")
    revoke_s = time.perf_counter() - t
    after, serve_s = page()
    total = time.perf_counter() - t
    leaked = len({v.id for v in after.videos} & hot_ids)
    revocation = {"affected_videos": args.affected, "videos_withdrawn": withdrawn, "revoke_s": round(revoke_s, 3),
                  "next_feed_page_s": round(serve_s, 4), "revocation_to_feed_exit_s": round(total, 3),
                  "affected_in_next_page": leaked, "goal_s": 1.0, "goal_met": total < 1.0 and leaked == 0}
    log(f"revocation: {total:.3f} s to a feed without any of {args.affected} videos")

    # -- a lapse no video row records: the feed serve must withhold by itself ----------------------------
    with stores.engine.begin() as conn:
        user_store.remove_follow(conn=conn, follower_id=world["mut_owner"], followee_id=world["mut_creator"])
    mut_ids = {f"vid_b{i:07d}" for i in range(args.affected, 2 * args.affected)}
    lapsed_page, lapsed_s = page()
    lapse = {"affected_videos": args.affected, "feed_page_s": round(lapsed_s, 4),
             "withheld": lapsed_page.withheld, "affected_served": len({v.id for v in lapsed_page.videos} & mut_ids),
             "baseline": {"method": "feed page with nothing to withhold (median of 5)", "feed_page_s": round(baseline_feed_s, 4)},
             "ratio": round(lapsed_s / baseline_feed_s, 2), "goal_s": 1.0,
             "goal_met": lapsed_s < 1.0 and not ({v.id for v in lapsed_page.videos} & mut_ids)}
    log(f"serve-time lapse: first page in {lapsed_s:.3f} s, {lapsed_page.withheld} withheld")

    # -- sweep -------------------------------------------------------------------------------------------
    from kinora.stores import catalog

    with stores.engine.connect() as conn:
        sample = catalog.live_videos_with_cameos(conn=conn, after_id=None, limit=args.baseline_videos)
        t = time.perf_counter()
        for v in sample:
            check_videos(conn=conn, videos=[v], max_cameos=max_cameos)
        per_video_s = (time.perf_counter() - t) / max(1, len(sample))
        live = len(catalog.live_videos_with_cameos(conn=conn, after_id=None, limit=10**9))
    t = time.perf_counter()
    with stores.engine.begin() as conn:
        lapsed = find_lapsed(conn=conn, settings=settings)
        find_s = time.perf_counter() - t
        unpublished = withdraw(conn=conn, lapsed=lapsed)
    sweep_s = time.perf_counter() - t
    sweep = {"live_videos_checked": live, "lapsed": len(lapsed), "unpublished": unpublished,
             "find_s": round(find_s, 3), "seconds": round(sweep_s, 3),
             "baseline": {"method": "check_videos one video at a time", "sampled_videos": len(sample),
                          "seconds": round(per_video_s * live, 2), "extrapolated": True},
             "ratio": round(per_video_s * live / sweep_s, 1), "goal_s": 60.0,
             "goal_met": sweep_s < 60 and unpublished == args.affected}
    log(f"sweep: {live} live videos, {len(lapsed)} lapsed, {sweep_s:.2f} s")
    stores.engine.dispose()
    return {
        "benchmark": "consent", "database": stores.engine.url.get_backend_name(), "pinned_core": core,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data": world["counts"], "reasons": reasons,
        "checks": checks, "revocation": revocation, "serve_time_lapse": lapse, "sweep": sweep,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cameos", type=int, default=100_000)
    p.add_argument("--grants", type=int, default=1_000_000, help="Per-person grants (approval-list rows).")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--baseline-requests", type=int, default=2_000)
    p.add_argument("--affected", type=int, default=10_000, help="Videos hit by the revocation, and by the unfollow.")
    p.add_argument("--videos", type=int, default=60_000, help="Live videos with a cameo (at least 2 x --affected).")
    p.add_argument("--baseline-videos", type=int, default=1_000)
    p.add_argument("--database-url", default=None, help="Default: SQLite in a temporary home.")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.videos < 2 * args.affected or min(args.cameos, args.requests, args.affected) < 10:
        print("error: --videos must be at least 2 x --affected, and the counts at least 10", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    try:
        result = run(args)
    except Exception as exc:  # one line, the benchmark failed to measure
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
