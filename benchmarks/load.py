"""Benchmark: sustained mixed load on the Serve API, then faults, and what each one lost.

    python benchmarks/load.py                       # 5 minutes of load, then the faults
    python benchmarks/load.py --duration 30         # a shorter run
    python benchmarks/load.py --sqlite              # the embedded store (no database-connection fault)

A Ray head on loopback (its own process, as a cluster would be) runs the Kinora Serve application
over a fresh data home, seeded. One asyncio client (aiohttp) keeps three streams going for the
whole run:

* feed: ``GET /v1/feed`` in a closed loop at ``--feed-concurrency``;
* events: ``POST /v1/events`` batches of ``--event-batch`` at ``--event-rate`` batches/s, every
  tenth batch sent twice (a client retry) and any batch that got no 202 retried with the same ids;
* generations: ``POST /v1/generations`` (tiny preset, 1 s clips) at ``--generation-rate``/s.

Phase 1 (``--duration`` s after a warm-up): errors per stream (any answer but 2xx/429, or no
answer), p50/p99, and the resident memory of the Serve processes (controller, proxy, replicas)
sampled every 5 s: its growth over the phase and its slope, against the first sample.

Phase 2, the faults, one after another with the load still running: a generator replica killed
while jobs run; the ingress replica killed; every database connection terminated
(``pg_terminate_backend``; PostgreSQL only: SQLite has no server connection to lose); a campaign
flow run SIGKILLed after its first published video, then rerun.

Then the load stops, the platform settles (no accepted job left queued or running), and the
report counts, against the store and the lake: accepted events missing (``event_ids`` and the
lake's ``events``), accepted jobs missing or stuck, campaign requests published other than once.
Goal: nothing lost, nothing stuck, nothing doubled; no error under sustained load; flat memory.
The last stdout line is the JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.local_head import loopback_head  # noqa: E402

TERMINAL = {"succeeded", "failed", "blocked", "cancelled"}


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stream:
    """What one request stream saw in one window."""

    ok: int = 0
    limited: int = 0  # 429: the API's quota answered, not an error
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, status: int | None, ms: float, kind: str | None = None) -> None:
        if status is not None and 200 <= status < 300:
            self.ok += 1
            self.latencies_ms.append(ms)
        elif status == 429:
            self.limited += 1
        else:
            self.errors += 1
            key = kind or f"http {status}"
            self.error_kinds[key] = self.error_kinds.get(key, 0) + 1

    def summary(self, seconds: float) -> dict:
        lat = sorted(self.latencies_ms)
        pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        return {"ok": self.ok, "rate_per_s": round(self.ok / seconds, 2) if seconds else None, "errors": self.errors,
                "rate_limited": self.limited, "error_kinds": self.error_kinds, "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


class Load:
    """The three request streams; ``window`` names the phase their outcomes are counted under."""

    def __init__(self, base: str, key: str, args) -> None:
        self.base, self.key, self.args = base, key, args
        self._window = "warmup"
        self.spans: dict[str, list[float]] = {"warmup": [time.perf_counter(), time.perf_counter()]}
        self.streams: dict[str, dict[str, Stream]] = {}
        self.accepted_events: set[str] = set()
        self.accepted_jobs: set[str] = set()
        self.stop = asyncio.Event()
        self._n = 0

    @property
    def window(self) -> str:
        return self._window

    @window.setter
    def window(self, name: str) -> None:
        now = time.perf_counter()
        self.spans[self._window][1] = now
        self.spans.setdefault(name, [now, now])
        self._window = name

    def seconds(self, name: str) -> float:
        start, end = self.spans[name]
        return (time.perf_counter() if name == self._window else end) - start

    def _s(self, name: str) -> Stream:
        return self.streams.setdefault(self.window, {}).setdefault(name, Stream())

    async def _call(self, session, method: str, path: str, body=None) -> tuple[int | None, dict | None, str | None]:
        import aiohttp

        try:
            async with session.request(method, self.base + path, json=body,
                                       headers={"Authorization": f"Bearer {self.key}"},
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                data = await resp.json(content_type=None) if resp.content_type == "application/json" else None
                return resp.status, data, None
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            return None, None, type(exc).__name__

    async def feed(self, session) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            status, _body, kind = await self._call(session, "GET", "/v1/feed?limit=10")
            self._s("feed").record(status, (time.perf_counter() - t0) * 1000, kind)
            if status is None:
                await asyncio.sleep(0.2)

    async def events(self, session, video_ids: list[str]) -> None:
        pending: list[list[dict]] = []
        while not self.stop.is_set():
            t_next = time.perf_counter() + 1 / self.args.event_rate
            if pending:
                batch = pending.pop(0)  # a batch that got no 202: the client retries it, same ids
            else:
                self._n += 1
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                batch = [{"event_id": f"ld-{self._n}-{i}", "ts": now, "user_id": f"usr_load{i % 50}",
                          "video_id": video_ids[(self._n + i) % len(video_ids)], "event_type": "view", "watch_ms": 700 + i}
                         for i in range(self.args.event_batch)]
            for attempt in range(2 if self._n % 10 == 0 else 1):  # every tenth batch twice: a duplicate delivery
                t0 = time.perf_counter()
                status, _body, kind = await self._call(session, "POST", "/v1/events", {"events": batch})
                self._s("events").record(status, (time.perf_counter() - t0) * 1000, kind)
                if status == 202:
                    self.accepted_events.update(e["event_id"] for e in batch)
                elif attempt == 0:
                    pending.append(batch)
                    break
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))

    async def generations(self, session) -> None:
        i = 0
        while not self.stop.is_set():
            t_next = time.perf_counter() + 1 / self.args.generation_rate
            i += 1
            t0 = time.perf_counter()
            status, body, kind = await self._call(session, "POST", "/v1/generations",
                                                  {"prompt": f"A paper boat on a pond, take {i}", "duration_s": 1, "seed": i})
            self._s("generations").record(status, (time.perf_counter() - t0) * 1000, kind)
            if status == 202 and body:
                self.accepted_jobs.add(body["id"])
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))

    async def submit_now(self, n: int) -> list[str]:
        """Submit ``n`` generations at once (so a fault finds jobs in flight)."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            out = []
            for k in range(n):
                status, body, _ = await self._call(session, "POST", "/v1/generations",
                                                   {"prompt": f"A kite in the wind, burst {uuid.uuid4().hex[:6]}",
                                                    "duration_s": 2, "seed": k})
                if status == 202 and body:
                    self.accepted_jobs.add(body["id"])
                    out.append(body["id"])
            return out

    async def run(self, video_ids: list[str]) -> None:
        import aiohttp

        conn = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=conn) as session:
            tasks = [asyncio.create_task(self.feed(session)) for _ in range(self.args.feed_concurrency)]
            tasks.append(asyncio.create_task(self.events(session, video_ids)))
            tasks.append(asyncio.create_task(self.generations(session)))
            await self.stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)


# -- the platform under test --------------------------------------------------------------------

def _serve_memory_mb() -> float:
    """Resident memory of the Serve processes (controller, proxy, replicas), summed."""
    import psutil

    total = 0
    for p in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "ray::Serve" in cmd or "ray::ProxyActor" in cmd or "SERVE_" in cmd:
            mem = p.info.get("memory_info")
            total += mem.rss if mem else 0
    return total / 2**20


def _replica(deployment: str, app: str):
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith(f"SERVE_REPLICA::{app}#{deployment}#")]
    return ray.get_actor(names[0], namespace="serve") if names else None


def _wait_healthy(base: str, key: str, timeout: float = 90) -> float:
    """Seconds until the API answers a key-authenticated request again."""
    import urllib.error
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        req = urllib.request.Request(f"{base}/v1/feed?limit=1", headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the API did not come back within {timeout} s")


def _job_states(engine, ids: set[str]) -> dict[str, str]:
    import sqlalchemy as sa

    from kinora.stores.schema import jobs

    out: dict[str, str] = {}
    with engine.connect() as conn:
        ids_l = sorted(ids)
        for i in range(0, len(ids_l), 500):
            out.update(conn.execute(sa.select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(ids_l[i:i + 500]))).all())
    return out


def _settle(engine, ids: set[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = _job_states(engine, ids)
        if all(states.get(i) in TERMINAL for i in ids) or time.monotonic() > deadline:
            return states
        time.sleep(1)


def _stored_event_ids(engine, lake_root: Path, ids: set[str]) -> tuple[int, int, int]:
    """(of ``ids``: claimed in event_ids, distinct in the lake; lake rows of ``ids`` in all)."""
    import duckdb
    import sqlalchemy as sa

    from kinora.stores.schema import event_ids

    with engine.connect() as conn:
        claimed = {r for (r,) in conn.execute(sa.select(event_ids.c.event_id).where(event_ids.c.event_id.like("ld-%")))}
    glob = str(lake_root / "events" / "date=*" / "*.parquet")
    rows = duckdb.sql(f"SELECT event_id FROM read_parquet('{glob}') WHERE event_id LIKE 'ld-%'").fetchall()
    in_lake = [r[0] for r in rows]
    return len(ids & claimed), len(ids & set(in_lake)), sum(1 for e in in_lake if e in ids)


def _terminate_connections(url: str) -> int:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        n = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name}).scalar()
    admin.dispose()
    return int(n or 0)


def _campaign_file(folder: Path, n: int) -> Path:
    f = folder / "load-campaign.yaml"
    items = "\n".join(f"  - {{id: item{i}, prompt: A lighthouse in fog number {i}}}" for i in range(n))
    f.write_text(f"name: load-campaign\nrequester: studio\ndefaults: {{duration_s: 1}}\nitems:\n{items}\n")
    return f


def _campaign_rows(engine, campaign: str) -> tuple[int, int, int]:
    """(published videos, jobs with more than one video, jobs left queued/running) of a campaign."""
    import sqlalchemy as sa

    from kinora.stores.schema import jobs, videos

    with engine.connect() as conn:
        per_job = conn.execute(sa.select(videos.c.job_id, sa.func.count()).join(jobs, jobs.c.id == videos.c.job_id)
                               .where(jobs.c.campaign_id == campaign).group_by(videos.c.job_id)).all()
        open_ = conn.execute(sa.select(sa.func.count()).select_from(jobs)
                             .where(jobs.c.campaign_id == campaign, jobs.c.status.in_(("queued", "running")))).scalar()
    return sum(n for _, n in per_job), sum(1 for _, n in per_job if n > 1), int(open_ or 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds of sustained load (phase 1)")
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--feed-concurrency", type=int, default=4)
    p.add_argument("--event-rate", type=float, default=5.0, help="event batches per second")
    p.add_argument("--event-batch", type=int, default=100)
    p.add_argument("--generation-rate", type=float, default=0.2, help="generation requests per second")
    p.add_argument("--campaign-size", type=int, default=6)
    p.add_argument("--sqlite", action="store_true", help="the embedded SQLite store (no database-connection fault)")
    p.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = p.parse_args(argv)

    os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                       "RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "1.0", "TOKENIZERS_PARALLELISM": "false"})
    for k in [k for k in os.environ if k.startswith("KINORA_")]:
        del os.environ[k]
    work = Path(tempfile.mkdtemp(prefix="kinora-load-"))
    db_url = None if args.sqlite else _fresh_postgres(args.postgres_url)
    port = _free_port()
    env = {"KINORA_HOME": str(work / "home"), "KINORA_SERVE__PORT": str(port),
           "KINORA_SERVE__METRICS_EXPORT_PORT": str(_free_port()), "KINORA_SERVE__JOB_LEASE_S": "3",
           "KINORA_SERVE__RECOVERY_INTERVAL_S": "0.5", "KINORA_GENERATION__MAX_ONGOING_REQUESTS": "32"}
    if db_url:
        env["KINORA_STORE__DATABASE_URL"] = db_url
    try:
        with loopback_head(env={**os.environ}) as address:
            env["KINORA_SERVE__RAY_ADDRESS"] = address
            os.environ.update(env)
            report = _run(args, work, env, db_url)
    finally:
        if db_url:
            _drop_postgres(args.postgres_url, db_url)
    print(json.dumps(report))
    return 0


def _fresh_postgres(url: str) -> str | None:
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"kinora_load_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001
        log(f"no PostgreSQL at {url} ({type(exc).__name__}): on SQLite, without the database-connection fault")
        return None
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    from kinora.stores.db import dispose_engines

    dispose_engines()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def _run(args, work: Path, env: dict, db_url: str | None) -> dict:
    from kinora.auth import create_key
    from kinora.seed import seed
    from kinora.settings import load_settings
    from kinora.stores import catalog
    from kinora.stores.bundle import Stores
    from serving.runtime import start_serve

    settings = load_settings()
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        key = create_key(conn=conn, user_handle="alice", name="load", per_day=100_000, max_concurrent=10_000,
                         scopes=["generations:write", "generations:read", "videos:read", "feed:read", "events:write"])[1]
    t0 = time.perf_counter()
    start_serve(settings)
    base = settings.public_base_url
    _wait_healthy(base, key, timeout=180)
    log(f"Serve up in {time.perf_counter() - t0:.1f} s at {base} ({'PostgreSQL' if db_url else 'SQLite'})")
    # the events need known videos: publish a few first
    load = Load(base, key, args)
    first = asyncio.run(load.submit_now(3))
    _settle(stores.engine, set(first), 180)
    with stores.engine.connect() as conn:
        video_ids = [v.id for v in catalog.list_published(conn=conn)][:50]
    if not video_ids:
        raise RuntimeError("no video was published before the load began")

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=lambda: loop.run_until_complete(load.run(video_ids)), daemon=True)
    runner.start()

    def in_window(name: str, seconds: float) -> float:
        load.window = name
        t = time.perf_counter()
        time.sleep(seconds)
        return time.perf_counter() - t

    in_window("warmup", args.warmup)
    memory: list[tuple[float, float]] = []
    load.window = "sustained"
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < args.duration:
        memory.append((time.perf_counter() - t_start, _serve_memory_mb()))
        time.sleep(min(5.0, max(0.0, args.duration - (time.perf_counter() - t_start))))
    memory.append((time.perf_counter() - t_start, _serve_memory_mb()))
    sustained_s = time.perf_counter() - t_start
    log(f"sustained phase done ({sustained_s:.0f} s)")

    faults = []

    def fault(name: str, action) -> None:
        load.window = name
        t = time.perf_counter()
        detail = action()
        recovered = _wait_healthy(base, key)
        time.sleep(3)  # let the streams run on the recovered platform
        faults.append({"fault": name, "detail": detail, "recovered_after_s": round(recovered, 2),
                       "window_s": round(time.perf_counter() - t, 1)})
        log(f"fault {name}: {detail}; API back after {recovered:.1f} s")

    import ray

    def kill_generator():
        burst = asyncio.run(load.submit_now(3))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "running" not in _job_states(stores.engine, set(burst)).values():
            time.sleep(0.2)
        running = sum(1 for s in _job_states(stores.engine, set(burst)).values() if s == "running")
        ray.kill(_replica("VideoGenerator", settings.serve.app_name), no_restart=True)
        return f"killed the generator replica with {running} of a burst of 3 jobs running"

    def kill_ingress():
        ray.kill(_replica("KinoraApi", settings.serve.app_name), no_restart=True)
        return "killed the ingress replica"

    def cut_database():
        if not db_url:
            return "not applicable: the embedded SQLite store has no server connection"
        return f"terminated {_terminate_connections(db_url)} PostgreSQL connections"

    campaign = _campaign_file(work, args.campaign_size)
    kinora = [sys.executable, "-m", "kinora.cli", "campaign", "run", str(campaign), "--json"]
    child_env = {**os.environ, **env}

    def kill_flow():
        proc = subprocess.Popen(kinora, cwd=ROOT, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and _campaign_rows(stores.engine, "load-campaign")[0] == 0:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        published = _campaign_rows(stores.engine, "load-campaign")[0]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rerun = subprocess.run(kinora, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=600)
        if rerun.returncode != 0:
            raise RuntimeError(f"the campaign rerun failed: {rerun.stderr[-2000:]}")
        summary = json.loads(rerun.stdout)
        return (f"SIGKILLed the campaign run after {published} of {args.campaign_size} published; "
                f"the rerun skipped {summary['already_published']} and published {summary['published']}")

    for name, action in (("generator_replica", kill_generator), ("ingress_replica", kill_ingress),
                         ("database_connections", cut_database), ("flow_run", kill_flow)):
        fault(name, action)

    load.window = "drain"
    loop.call_soon_threadsafe(load.stop.set)
    runner.join(timeout=60)
    states = _settle(stores.engine, load.accepted_jobs, timeout=240)
    claimed, in_lake, lake_rows = _stored_event_ids(stores.engine, settings.lake_dir, load.accepted_events)
    published, doubled, campaign_open = _campaign_rows(stores.engine, "load-campaign")
    missing_jobs = sorted(i for i in load.accepted_jobs if i not in states)
    stuck_jobs = sorted(i for i, s in states.items() if s not in TERMINAL)

    mem = [m for _, m in memory]
    slope = statistics.linear_regression([t for t, _ in memory], mem).slope * 60 if len(memory) > 2 else 0.0
    load.window = "done"
    windows = {w: {k: s.summary(load.seconds(w)) for k, s in streams.items()}
               for w, streams in load.streams.items()}
    for f in faults:
        f["client_errors_during"] = sum(s["errors"] for s in windows.get(f["fault"], {}).values())
    lost = {"events_accepted": len(load.accepted_events), "events_missing_from_store": len(load.accepted_events) - claimed,
            "events_missing_from_lake": len(load.accepted_events) - in_lake,
            "event_rows_stored_twice": lake_rows - in_lake,
            "jobs_accepted": len(load.accepted_jobs), "jobs_missing": len(missing_jobs), "jobs_stuck": len(stuck_jobs),
            "job_states": {s: sum(1 for v in states.values() if v == s) for s in sorted(set(states.values()))},
            "campaign_published": published, "campaign_requests": args.campaign_size,
            "campaign_published_twice": doubled, "campaign_jobs_open": campaign_open}
    sustained = windows.get("sustained", {})
    report = {
        "benchmark": "load",
        "store": "postgresql" if db_url else "sqlite",
        "sustained": {"seconds": round(sustained_s, 1), "streams": sustained,
                      "errors": sum(s["errors"] for s in sustained.values()),
                      "memory_mb": {"first": round(mem[0], 1), "last": round(mem[-1], 1), "max": round(max(mem), 1),
                                    "growth_ratio": round(mem[-1] / mem[0], 3) if mem[0] else None,
                                    "slope_mb_per_min": round(slope, 2), "samples": len(mem)}},
        "faults": faults,
        "lost": lost,
        "goals": {
            "no_error_under_sustained_load": sum(s["errors"] for s in sustained.values()) == 0,
            "flat_memory": bool(mem[0]) and mem[-1] / mem[0] < 1.10,
            "nothing_lost": lost["events_missing_from_store"] == 0 and lost["events_missing_from_lake"] == 0
            and not missing_jobs and published == args.campaign_size,
            "nothing_stuck": not stuck_jobs and campaign_open == 0,
            "nothing_doubled": doubled == 0 and lost["event_rows_stored_twice"] == 0,
        },
        "windows": {w: v for w, v in windows.items() if w not in ("sustained",)},
    }
    ray.shutdown()
    return report


if __name__ == "__main__":
    sys.exit(main())
