"""Several processes writing the operational store at once, as Serve replicas and a flow do: no
job claimed twice or lost, no event ingested twice or dropped, no duplicate campaign job.

Runs on SQLite, and on PostgreSQL in the PostgreSQL pass of `make test` (TEST_STORE=postgresql).
"""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta

import polars as pl
import sqlalchemy as sa

JOBS = 60


def _open(home: str, url: str | None):
    from kinora.settings import Settings
    from kinora.stores.bundle import Stores

    return Stores.open(Settings(home=home, store={"database_url": url} if url else {}))


def _ids(index: int) -> list[range]:
    """Replica ``index``'s three batches: each overlaps half of the next replica's."""
    return [range(index * 250 + b * 500, index * 250 + b * 500 + 500) for b in range(3)]


def _replica(home: str, url: str | None, name: str, index: int, barrier, out) -> None:
    """Claim what jobs it can, run them to the end; ingest events that overlap the others' batches."""
    from kinora.events import ingest, validate
    from kinora.stores import jobs as job_store

    stores = _open(home, url)
    barrier.wait()
    won = []
    for i in range(JOBS):
        job_id = f"job_{(i + index * 20) % JOBS:03d}"  # each replica walks the list from another place
        with stores.engine.begin() as conn:
            if not job_store.claim(conn=conn, job_id=job_id, owner=name, lease_s=300):
                continue
        with stores.engine.begin() as conn:
            assert job_store.start_running(conn=conn, job_id=job_id, owner=name)
            job_store.set_status(conn=conn, job_id=job_id, status="succeeded")
        won.append(job_id)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    accepted = 0
    for ids in _ids(index):  # a batch retried through another replica, as a load balancer would
        events = validate([{"event_id": f"evt_{k:06d}", "ts": (t0 + timedelta(seconds=k)).isoformat(), "user_id": f"u{k % 7}",
                            "video_id": f"v{k % 11}", "event_type": "hide" if k % 50 == 0 else "view",
                            **({"watch_ms": 1000} if k % 50 else {})} for k in ids])
        accepted += ingest(engine=stores.engine, lake=stores.lake, events=events).accepted
    out.put((name, won, accepted))


def _flow(home: str, url: str | None, barrier, out) -> None:
    """A campaign flow registering its jobs, twice (a resumed run), while the replicas work."""
    from kinora.stores import jobs as job_store

    stores = _open(home, url)
    barrier.wait()
    created = 0
    for _run in range(2):
        for i in range(40):
            with stores.engine.begin() as conn:
                created += job_store.create_job(conn=conn, job_id=f"cmp_{i:03d}", requester_id="usr_studio",
                                                prompt=f"p{i}", params={}, campaign_id="c1", status="queued")
    out.put(("flow", created, 0))


def test_replicas_and_a_flow_write_at_once_and_nothing_is_lost_or_doubled(stores, settings):
    from kinora.stores import jobs as job_store
    from kinora.stores.schema import event_ids, hidden_videos, jobs, users

    with stores.engine.begin() as conn:
        conn.execute(users.insert(), [dict(id="usr_studio", handle="studio", display_name="s", created_at=datetime.now(UTC))])
        for i in range(JOBS):
            job_store.create_job(conn=conn, job_id=f"job_{i:03d}", requester_id="usr_studio", prompt="x", params={})
    url = settings.store.database_url
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(str(settings.home), url, f"replica-{i}", i, barrier, out)) for i in range(3)]
    procs.append(ctx.Process(target=_flow, args=(str(settings.home), url, barrier, out)))
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]

    claimed = [j for name, won, _ in results if name != "flow" for j in won]
    assert sorted(claimed) == [f"job_{i:03d}" for i in range(JOBS)]  # each job run by exactly one replica
    flow_created = next(created for name, created, _ in results if name == "flow")
    assert flow_created == 40  # the resumed run created nothing twice
    with stores.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.id, jobs.c.status, jobs.c.attempts).where(jobs.c.id.like("job_%"))).all()
        assert {r.status for r in rows} == {"succeeded"} and {r.attempts for r in rows} == {1}
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.campaign_id == "c1")).scalar() == 40
        ids = set(conn.execute(sa.select(event_ids.c.event_id)).scalars())
        hides = conn.execute(sa.select(sa.func.count()).select_from(hidden_videos)).scalar()

    expected = {f"evt_{k:06d}" for i in range(3) for r in _ids(i) for k in r}  # 0..1999
    assert ids == expected
    accepted = sum(a for name, _, a in results if name != "flow")
    assert accepted == len(expected)  # every id accepted by exactly one replica
    lake = pl.read_parquet(list((settings.lake_dir / "events").rglob("*.parquet")))
    assert lake.height == len(expected) and lake["event_id"].n_unique() == len(expected)  # in the lake once each
    assert hides == len({(f"u{k % 7}", f"v{k % 11}") for k in (int(e[4:]) for e in expected) if k % 50 == 0})
