"""Catalog rows for a simulated world: the users, creators and videos of :mod:`datasets.simulator`
inserted into the operational store as published videos, so the feed can rank them.

They stand in for generated videos in the feed benchmark, the demo and the tests: the rows are
complete (a job each, provenance fields, no cameo) but there is no media file behind them. Publish
times are shifted so that the end of the simulated history is ``now``: a video published on the
last simulated day is fresh today.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from datasets.simulator import World


def insert_world(engine: sa.Engine, world: World, *, now: dt.datetime, end_day: float | None = None,
                 limit: int | None = None) -> list[str]:
    """Insert the world's creators and its videos published by ``end_day`` (default: the whole
    history) as live catalog rows; return the video ids inserted (newest last)."""
    from kinora.stores.schema import jobs, users, videos

    end = world.config.days if end_day is None else end_day
    shift = now - (world.config.start + dt.timedelta(days=end))
    frame = world.videos_frame()
    frame = frame.filter(frame["published_at"] <= world.config.start + dt.timedelta(days=end))
    if limit is not None:
        frame = frame.tail(limit)
    creators = sorted(set(frame["creator_id"].to_list()))
    made = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    user_rows = [dict(id=c, handle=c.removeprefix("usr_"), display_name=c, created_at=made) for c in creators]
    job_rows, video_rows = [], []
    for r in frame.iter_rows(named=True):
        published = r["published_at"] + shift
        job = "req_" + r["video_id"].removeprefix("vid_")
        job_rows.append(dict(id=job, requester_id=r["creator_id"], prompt=r["prompt"], params={}, status="succeeded",
                             video_id=r["video_id"], created_at=published, updated_at=published, attempts=1))
        video_rows.append(dict(id=r["video_id"], job_id=job, creator_id=r["creator_id"], prompt=r["prompt"],
                               duration_ms=r["duration_ms"], width=256, height=256, fps=24, model_family="simulated",
                               model_version="simulator", seed=0, media_key="simulated/none.mp4",
                               thumbnail_key="simulated/none.jpg", sha256="0" * 64,
                               provenance={"c2pa_state": None, "claim_generator": None, "visible_mark": None}, cameo_ids=[],
                               published_at=published, created_at=published))
    with engine.begin() as conn:
        existing = set(conn.execute(sa.select(users.c.id).where(users.c.id.in_(creators))).scalars()) if creators else set()
        new_users = [u for u in user_rows if u["id"] not in existing]
        if new_users:
            conn.execute(users.insert(), new_users)
        for i in range(0, len(video_rows), 5_000):
            conn.execute(jobs.insert(), job_rows[i:i + 5_000])
            conn.execute(videos.insert(), video_rows[i:i + 5_000])
    return [v["id"] for v in video_rows]
