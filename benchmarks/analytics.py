"""Benchmark: the dashboards' queries at 10 million events (100 million with ``--large``).

    .venv/bin/python benchmarks/analytics.py            # 10M events, ~10 min on 2 cores
    .venv/bin/python benchmarks/analytics.py --large    # 100M events (needs ~15 GB of disk and ~1 h)
    .venv/bin/python benchmarks/analytics.py --quick    # 300k events, ~1 min (the smoke test runs smaller)

1. **Lake.** Simulated engagement (``datasets/simulator.py``) over ``--days`` (30) days, written
   the way ingestion writes it: date partitions, files of at most 250,000 events, and a share
   (``--dup-share``, 0.5%) of events written twice by "retried batches" (deduplication is real
   work). Beside it: one ``feed_requests`` row per session (ranker versions changing weekly),
   ``--requests`` campaign and API requests with their decisions, each outcome in its own small
   file as the generation path writes them, verify look-ups, a catalog snapshot (the world's
   videos and creators, Kinora-published videos with stamps and takedowns, cameos and their
   uses, remix chains, revocations) and a ranker registry of five versions.
2. **Refresh.** ``dashboards.layer.refresh`` from nothing (every day rolled up), then again after
   one more day of events lands (incremental). The catalog export from a SQLite store holding
   the world's videos is timed on its own (``--no-export`` skips it).
3. **Pages.** Every page's queries (``dashboards.metrics.PAGES``) over the whole period with no
   filter (the widest view), each run ``--repeats`` times on a fresh DuckDB connection (a
   dashboard cache miss: connect + every query of the page); the median is the figure. The same
   queries written in Polars and in pandas (``benchmarks/analytics_frames.py``) over the same files,
   timed the same way; ratios are engine / DuckDB. A few numbers of each page are compared across
   the engines (``agree``).
4. **Without the rollups.** Feed engagement per day straight from the raw events (deduplicated
   each time) in DuckDB, Polars and pandas: what one chart would cost without the layer.

Goals: every page's queries under 1 s at 10 million events on 2 cores; under 5 s at 100 million.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

EVENTS_PER_SESSION = 13.6  # measured on the simulator's defaults: impressions plus engagement
START = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
VERSIONS = [f"rk-bench-{i}" for i in range(1, 6)]


def _log(msg: str) -> None:
    print(f"[analytics] {msg}", file=sys.stderr, flush=True)


# -- the lake ------------------------------------------------------------------------------------

def _world(events: int, days: int, seed: int):
    from datasets.simulator import SimConfig, build_world

    users = max(200, round(events / (EVENTS_PER_SESSION * 1.2 * days)))
    return build_world(SimConfig(users=users, creators=max(20, min(users // 20, 4000)),
                                 videos=max(500, min(users * 3, 400_000)), days=float(days + 1), start=START,
                                 sessions_per_user_per_day=1.2, seed=seed))


def _write_events_day(lake: Path, day_frame, day_index: int, dup_share: float, rng, file_rows: int = 250_000) -> int:
    import polars as pl
    import pyarrow.parquet as pq

    written = 0
    for (date,), part in day_frame.group_by(pl.col("ts").dt.date(), maintain_order=True):
        folder = lake / "events" / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        n_files = max(1, -(-part.height // file_rows))
        for i in range(n_files):
            chunk = part.slice(i * file_rows, file_rows).with_columns(batch_id=pl.lit(f"evb_d{day_index}_{i}"))
            pq.write_table(chunk.to_arrow(), folder / f"bench-d{day_index}-{i}.parquet", compression="zstd")
            written += chunk.height
        n_dup = int(part.height * dup_share)
        if n_dup:
            idx = rng.choice(part.height, size=n_dup, replace=False)
            dups = part[sorted(idx.tolist())].with_columns(batch_id=pl.lit(f"evb_d{day_index}_retry"))
            pq.write_table(dups.to_arrow(), folder / f"bench-d{day_index}-retry.parquet", compression="zstd")
            written += dups.height
    return written


def _feed_requests(lake: Path, day_frame, day_index: int) -> int:
    import polars as pl
    import pyarrow.parquet as pq

    version = VERSIONS[min(day_index // 7, len(VERSIONS) - 1)]
    req = (day_frame.filter(pl.col("event_type") == "impression", pl.col("position") == 0)
           .select("request_id", first_position=pl.lit(0, pl.Int32), ts="ts", user_id="user_id",
                   model_version=pl.when(pl.col("request_id").str.ends_with("7")).then(None).otherwise(pl.lit(version)),
                   personalized=pl.lit(True), steered=pl.lit(False), candidates=pl.lit(1000, pl.Int32),
                   served=pl.lit(10, pl.Int32)))
    for (date,), part in req.group_by(pl.col("ts").dt.date()):
        folder = lake / "feed_requests" / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(part.to_arrow(), folder / f"bench-d{day_index}.parquet", compression="zstd")
    return req.height


def _simulate_day(world, day_index: int, events: int, days: int):
    import polars as pl

    from datasets.simulator import simulate

    sessions = max(10, round(events / days / EVENTS_PER_SESSION))
    frame = simulate(world, sessions=sessions, day_range=(day_index + 0.0, day_index + 1.0), seed=1000 + day_index)
    tag = f"d{day_index:03d}_"
    return frame.with_columns(event_id=pl.lit("e" + tag) + pl.col("event_id").str.slice(-10),
                              request_id=pl.when(pl.col("request_id").is_null()).then(None)
                              .otherwise(pl.lit("q" + tag) + pl.col("request_id").str.split("_").list.last()))


def build_lake(home: Path, *, events: int, days: int, dup_share: float, requests: int, seed: int) -> dict:
    """Write the lake, the catalog snapshot and the registry under ``home``; return what was written."""
    import numpy as np

    from kinora.stores.lake import Lake

    lake, root = home / "lake", home / "analytics"
    t0 = time.perf_counter()
    world = _world(events, days, seed)
    rng = np.random.default_rng(seed)
    written = sessions = 0
    for d in range(days):
        frame = _simulate_day(world, d, events, days)
        written += _write_events_day(lake, frame, d, dup_share, rng)
        sessions += _feed_requests(lake, frame, d)
        if d % 5 == 4 or d == days - 1:
            _log(f"lake: day {d + 1}/{days}, {written:,} event rows written")
    kinora_videos = _small_tables(Lake(lake, writer="bench"), requests=requests, days=days, rng=rng)
    _catalog(root / "catalog", world, kinora_videos, rng)
    _registry(home / "models", days)
    files = list(lake.rglob("*.parquet"))
    return {"world": world, "event_rows": written, "sessions": sessions, "files": len(files),
            "bytes": sum(f.stat().st_size for f in files), "seconds": round(time.perf_counter() - t0, 1)}


def _small_tables(lake, *, requests: int, days: int, rng) -> list[dict]:
    """Campaign/API outcomes and decisions (one file per outcome, as the generation path writes
    them) and verify look-ups; returns the published videos for the catalog."""
    statuses = rng.choice(["published", "blocked_consent", "blocked_rights", "failed"], size=requests, p=[0.75, 0.1, 0.1, 0.05])
    works = [("Moonbeam Studios", "Captain Comet"), ("Brickworks", "Block Hero"), ("Sunny Records", "Lark")]
    published = []
    for i, status in enumerate(statuses):
        ts = START + dt.timedelta(days=float(rng.uniform(0, days)))
        campaign = None if i % 10 == 0 else f"campaign-{i % 20:02d}"
        gen = status in ("published", "failed")
        device = "cuda:0" if i % 3 else "cpu"
        row = dict(request_id=f"req_b{i:06d}", campaign_id=campaign, requester_id=f"usr_creator{i % 50:05d}",
                   source="api" if campaign is None else "campaign", status=status,
                   reason=None if status == "published" else f"{status}: reason {i % 7}",
                   video_id=f"vid_b{i:06d}" if status == "published" else None, model_family="ltx2",
                   model_version="ltx2-local", seed=i, duration_s=4.0, device=device if gen else None, consent_s=0.004,
                   rights_s=0.012, queue_s=0.3 if gen else None, generate_s=float(rng.uniform(8, 30)) if gen else None,
                   stamp_s=2.0 if status == "published" else None, mux_s=1.1 if status == "published" else None,
                   publish_s=0.05 if status == "published" else None, ts=ts)
        lake.append("generations", [row])
        holder, work = works[i % len(works)]
        lake.append("decisions", [
            dict(request_id=row["request_id"], campaign_id=campaign, stage="consent",
                 outcome="block" if status == "blocked_consent" else "allow", reason="consent", ts=ts),
            dict(request_id=row["request_id"], campaign_id=campaign, stage="rights",
                 outcome="block" if status == "blocked_rights" else "allow", reason="rights", ts=ts,
                 holder=holder if status == "blocked_rights" else None, work=work if status == "blocked_rights" else None)])
        if status == "published":
            published.append(dict(video_id=row["video_id"], creator_id=row["requester_id"], campaign_id=campaign, ts=ts, i=i))
    for i in range(max(10, requests // 3)):
        ts = START + dt.timedelta(days=float(rng.uniform(0, days)))
        verdict = ["intact", "stripped_or_reencoded", "tampered", "unknown"][i % 4]
        lake.append("verifications", [dict(verification_id=f"ver_b{i:06d}", ts=ts, source="api" if i % 2 else "cli",
                                           verdict=verdict, c2pa_state="trusted" if verdict == "intact" else "absent",
                                           watermark_found=verdict != "unknown",
                                           video_id=published[i % len(published)]["video_id"] if verdict != "unknown" else None,
                                           sha256="0" * 64)])
    return published


def _catalog(folder: Path, world, kinora_videos: list[dict], rng) -> None:
    """The catalog snapshot, in the format kinora.stores.catalog_export writes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kinora.stores.catalog_export import EXPORTS

    folder.mkdir(parents=True, exist_ok=True)
    sim = world.videos_frame()
    n = sim.height
    remix_of = [None] * n
    for i in rng.choice(np.arange(100, n), size=n // 20, replace=False).tolist() if n > 200 else []:
        remix_of[i] = f"vid_sim{int(rng.integers(0, i)):07d}"
    vids = [dict(video_id=r["video_id"], creator_id=r["creator_id"], campaign_id=None, prompt=r["prompt"],
                 duration_ms=r["duration_ms"], width=256, height=256, model_family="simulated", model_version="simulator",
                 created_at=r["published_at"], published_at=r["published_at"], unpublished_at=None, unpublished_reason=None,
                 remix_of=remix_of[k], content_id=None, c2pa_state=None, cameo_count=0)
            for k, r in enumerate(sim.iter_rows(named=True))]
    reasons = ["rights rescreen: names a blocked work", "consent sweep: cameo revoked", "removed by the owner of cameo @x"]
    for k, v in enumerate(kinora_videos):
        down = k % 25 == 0
        vids.append(dict(video_id=v["video_id"], creator_id=v["creator_id"], campaign_id=v["campaign_id"], prompt="a prompt",
                         duration_ms=4000, width=854, height=480, model_family="ltx2", model_version="ltx2-local",
                         created_at=v["ts"], published_at=v["ts"], unpublished_at=v["ts"] + dt.timedelta(hours=5) if down else None,
                         unpublished_reason=reasons[k % 3] if down else None, remix_of=None,
                         content_id=k + 1 if k % 50 else None, c2pa_state="Trusted", cameo_count=k % 2))
    creators = sorted(set(sim["creator_id"].to_list()))
    tables = {
        "videos": vids,
        "users": [dict(user_id=c, handle=c.removeprefix("usr_"), created_at=START) for c in creators],
        "cameos": [dict(cameo_id=f"cam_{i:04d}", handle=f"person{i}", owner_id=creators[i % len(creators)], kind="person",
                        permission=["everyone", "mutuals", "approved", "only_me"][i % 4], verified=True, created_at=START,
                        revoked_at=START + dt.timedelta(days=3) if i % 17 == 0 else None, deleted_at=None) for i in range(100)],
        "cameo_uses": [dict(video_id=kinora_videos[i % len(kinora_videos)]["video_id"], cameo_id=f"cam_{i % 100:04d}",
                            requester_id=creators[i % len(creators)], status=["active", "pending", "removed", "withdrawn"][i % 4],
                            reason=None, created_at=kinora_videos[i % len(kinora_videos)]["ts"], decided_at=None)
                       for i in range(min(2000, len(kinora_videos) * 3))],
        "consent_ledger": [dict(seq=i, ts=START + dt.timedelta(hours=i), cameo_id=f"cam_{i % 100:04d}", actor_id="u",
                                action="revoke" if i % 9 == 0 else "grant") for i in range(600)],
        "rights_works": [], "rights_rescreens": [],
    }
    for name, rows in tables.items():
        schema = EXPORTS[name][2]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"{name}.parquet")


def _registry(models: Path, days: int) -> None:
    for i, version in enumerate(VERSIONS):
        folder = models / "versions" / version
        folder.mkdir(parents=True, exist_ok=True)
        card = {"version": version, "created_at": (START + dt.timedelta(days=7 * i)).isoformat(), "train_impressions": 10_000 * (i + 1),
                "metrics": {"ndcg@10": 0.55 + 0.005 * i, "heads": {h: {"auc": 0.7} for h in ("watch", "like", "share", "remix", "negative")},
                            "baselines": {"lightgbm_lambdarank": {"ndcg@10": 0.55}, "recent_popular": {"ndcg@10": 0.52},
                                          "most_popular": {"ndcg@10": 0.5}}}}
        (folder / "card.json").write_text(json.dumps(card))
    (models / "registry.json").write_text(json.dumps({"production": VERSIONS[-1], "history": [
        {"version": v, "previous": None, "reason": "bench", "at": (START + dt.timedelta(days=7 * i, hours=1)).isoformat()}
        for i, v in enumerate(VERSIONS)]}))


# -- timing --------------------------------------------------------------------------------------

def _median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def _params(days: int) -> dict:
    return dict(start=START, end=START + dt.timedelta(days=days + 1), campaigns=[], versions=[], cohorts=[], top=50)


def time_pages(home: Path, *, engines: list[str], repeats: int, days: int, threads: int | None) -> dict:
    from analytics_frames import PAGES, PandasPages, PolarsPages, check

    from dashboards import layer

    lake, root = home / "lake", home / "analytics"
    p = _params(days)
    engine_fn = {
        "duckdb": lambda page: _duckdb_page(lake, root, page, p, threads),
        "polars": lambda page: PolarsPages(root).page(page, p),
        "pandas": lambda page: PandasPages(root).page(page, p),
    }
    out, agree = {}, {}
    for engine in engines:
        results = {}
        for page in PAGES:
            engine_fn[engine](page)  # warm the file cache and the imports, as a running dashboard is
            med, times, res = _median_time(lambda: engine_fn[engine](page), repeats)
            results[page] = res
            out.setdefault(page, {})[f"{engine}_s"] = round(med, 4)
            out[page].setdefault("runs", {})[engine] = [round(t, 4) for t in times]
        agree[engine] = check(results)
        _log(f"pages timed in {engine}: " + ", ".join(f"{pg} {out[pg][f'{engine}_s']:.3f}s" for pg in PAGES))
    t0 = time.perf_counter()
    layer.connect(lake=lake, root=root, threads=threads).close()
    return {"pages": out, "agree": agree, "connect_s": round(time.perf_counter() - t0, 4)}


def _duckdb_page(lake, root, page, p, threads):
    from dashboards import layer

    con = layer.connect(lake=lake, root=root, threads=threads)
    try:
        return layer.page_data(con, page, **p)
    finally:
        con.close()


def time_raw(home: Path, *, engines: list[str], events: int) -> dict:
    from analytics_frames import raw_feed_daily_pandas, raw_feed_daily_polars

    from dashboards import layer, metrics

    lake, root = home / "lake", home / "analytics"
    out = {}
    if "duckdb" in engines:
        t0 = time.perf_counter()
        con = layer.connect(lake=lake, root=root, raw=True)
        # the deduplicating scan of 10^8 events needs more than this 24 GB machine holds: let it spill
        con.execute(f"SET memory_limit = '8GB'; SET temp_directory = '{home / 'spill'}'")
        con.sql(metrics.RAW_FEED_DAILY).fetchall()
        out["duckdb_s"] = round(time.perf_counter() - t0, 3)
        con.close()
    if "polars" in engines:
        if events <= 30_000_000:
            t0 = time.perf_counter()
            raw_feed_daily_polars(lake)
            out["polars_s"] = round(time.perf_counter() - t0, 3)
        else:
            out["polars_s"] = None
            out["polars_note"] = "not run above 30M events: deduplicating 10^8 event ids ran this 24 GB machine out of memory"
    if "pandas" in engines:
        if events <= 30_000_000:
            t0 = time.perf_counter()
            raw_feed_daily_pandas(lake)
            out["pandas_s"] = round(time.perf_counter() - t0, 3)
        else:
            out["pandas_s"] = None
            out["pandas_note"] = "not run above 30M events: pandas holds every event in memory"
    return out


def time_catalog_export(home: Path, world) -> dict:
    """The snapshot from a real SQLite store holding the world's creators and videos."""
    import datetime as _dt

    from datasets.catalog_rows import insert_world
    from kinora.stores.catalog_export import export_catalog
    from kinora.stores.db import get_engine

    store = home / "export" / "kinora.db"
    shutil.rmtree(store.parent, ignore_errors=True)
    store.parent.mkdir(parents=True)
    engine = get_engine(f"sqlite:///{store}")
    insert_world(engine, world, now=_dt.datetime.now(_dt.timezone.utc))
    t0 = time.perf_counter()
    with engine.connect() as conn, conn.begin():
        counts = export_catalog(conn=conn, out_dir=home / "export" / "catalog")
    return {"seconds": round(time.perf_counter() - t0, 3), "rows": counts}


# -- main ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--large", action="store_true", help="100 million events (goal: every page under 5 s)")
    ap.add_argument("--quick", action="store_true", help="300,000 events")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--dup-share", type=float, default=0.005)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default="duckdb,polars,pandas")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--no-export", action="store_true", help="skip timing the catalog export from SQLite")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "analytics")
    ap.add_argument("--keep", action="store_true", help="keep the lake afterwards")
    ap.add_argument("--no-raw", action="store_true", help="skip the without-rollups baseline")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    events = 100_000_000 if args.large else 300_000 if args.quick else args.events
    goal_s = 5.0 if events > 30_000_000 else 1.0
    engines = [e for e in args.engines.split(",") if e]
    home = args.out / f"{events}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)

    from dashboards import layer

    _log(f"building a lake of ~{events:,} events over {args.days} days under {home}")
    built = build_lake(home, events=events, days=args.days, dup_share=args.dup_share, requests=args.requests, seed=args.seed)
    world = built.pop("world")
    _log(f"lake built: {built}")

    t0 = time.perf_counter()
    full = layer.refresh(lake=home / "lake", root=home / "analytics", ranking_dir=home / "models", threads=args.threads,
                         progress=_log)
    full_s = time.perf_counter() - t0
    # one more day lands, then the scheduled refresh runs
    import numpy as np

    extra = _simulate_day(world, args.days, events, args.days)
    _write_events_day(home / "lake", extra, args.days, args.dup_share, np.random.default_rng(1))
    _feed_requests(home / "lake", extra, args.days)
    t0 = time.perf_counter()
    incr = layer.refresh(lake=home / "lake", root=home / "analytics", ranking_dir=home / "models", threads=args.threads,
                         progress=_log)
    incr_s = time.perf_counter() - t0
    total_events = built["event_rows"] + extra.height

    pages = time_pages(home, engines=engines, repeats=args.repeats, days=args.days + 1, threads=args.threads)
    raw = {} if args.no_raw else time_raw(home, engines=engines, events=total_events)
    export = None if args.no_export else time_catalog_export(home, world)

    per_page = {}
    for page, t in pages["pages"].items():
        row = {k: v for k, v in t.items() if k != "runs"}
        if "duckdb_s" in row:
            for other in ("polars", "pandas"):
                if f"{other}_s" in row:
                    row[f"{other}_over_duckdb"] = round(row[f"{other}_s"] / row["duckdb_s"], 2)
            row["goal_met"] = row["duckdb_s"] < goal_s
        row["runs"] = t["runs"]
        per_page[page] = row
    agree = pages["agree"]
    ref = agree.get("duckdb")
    agreement = {e: (a == ref) for e, a in agree.items()} if ref else {}
    result = {
        "benchmark": "analytics",
        "setup": {"events_target": events, "event_rows_written": total_events, "days": args.days + 1,
                  "dup_share": args.dup_share, "users": world.config.users, "videos": world.config.videos,
                  "creators": world.config.creators, "sessions": built["sessions"], "lake_files": built["files"],
                  "lake_bytes": built["bytes"], "build_s": built["seconds"], "cores": os.cpu_count(),
                  "duckdb_threads": args.threads or "all", "repeats": args.repeats,
                  "window": "the whole period, no filter"},
        "refresh": {"full_s": round(full_s, 2), "full": full.seconds, "incremental_one_new_day_s": round(incr_s, 2),
                    "incremental": incr.seconds, "incremental_days_rebuilt": incr.days_rebuilt["events"]},
        "catalog_export": export,
        "pages": per_page,
        "connect_s": pages["connect_s"],
        "without_rollups_feed_daily_from_raw": raw
        | ({"ratio_raw_over_rollup_page": round(raw["duckdb_s"] / per_page["feed"]["duckdb_s"], 1)}
           if "duckdb_s" in raw and "duckdb_s" in per_page.get("feed", {}) else {}),
        "agree_with_duckdb": agreement,
        "checks": ref,
        "goal": f"every page under {goal_s:g} s at {events:,} events",
        "goal_met": all(r.get("goal_met", False) for r in per_page.values()),
        "max_page_s": max((r["duckdb_s"] for r in per_page.values() if "duckdb_s" in r), default=None),
    }
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
