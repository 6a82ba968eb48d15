"""The catalog of published videos."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from kinora.stores.schema import videos


def insert_video(*, conn: sa.Connection, values: dict) -> bool:
    """Insert a video row; return False when the job already has a video (nothing is published twice)."""
    try:
        with conn.begin_nested():
            conn.execute(videos.insert().values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def get_video(*, conn: sa.Connection, video_id: str) -> sa.Row | None:
    return conn.execute(sa.select(videos).where(videos.c.id == video_id)).first()


def get_video_by_job(*, conn: sa.Connection, job_id: str) -> sa.Row | None:
    return conn.execute(sa.select(videos).where(videos.c.job_id == job_id)).first()


def list_published(*, conn: sa.Connection, since: datetime | None = None) -> list[sa.Row]:
    q = sa.select(videos).where(videos.c.published_at.is_not(None), videos.c.unpublished_at.is_(None))
    if since is not None:
        q = q.where(videos.c.published_at >= since)
    return list(conn.execute(q.order_by(videos.c.published_at, videos.c.id)))
