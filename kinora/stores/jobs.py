"""Generation jobs and the decisions taken on them."""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import utcnow
from kinora.stores.schema import decisions, jobs

TERMINAL = frozenset({"succeeded", "failed", "blocked", "cancelled"})


def create_job(
    *,
    conn: sa.Connection,
    job_id: str,
    requester_id: str,
    prompt: str,
    params: dict,
    campaign_id: str | None = None,
    status: str = "queued",
) -> bool:
    """Insert the job unless it exists; return True when it was created.

    Campaign job ids are derived from the campaign, so a rerun finds its earlier jobs here.
    """
    now = utcnow()
    try:
        with conn.begin_nested():
            conn.execute(
                jobs.insert().values(
                    id=job_id, campaign_id=campaign_id, requester_id=requester_id, prompt=prompt,
                    params=params, status=status, reason=None, video_id=None, created_at=now, updated_at=now,
                )
            )
    except sa.exc.IntegrityError:
        return False
    return True


def get_job(*, conn: sa.Connection, job_id: str) -> sa.Row | None:
    return conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()


def set_status(
    *, conn: sa.Connection, job_id: str, status: str, reason: str | None = None, video_id: str | None = None
) -> None:
    values: dict = dict(status=status, reason=reason, updated_at=utcnow())
    if video_id is not None:
        values["video_id"] = video_id
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))


def record_decision(
    *, conn: sa.Connection, job_id: str, stage: str, outcome: str, reason: str, detail: dict | None = None
) -> None:
    conn.execute(
        decisions.insert().values(job_id=job_id, stage=stage, outcome=outcome, reason=reason, detail=detail or {}, ts=utcnow())
    )


def list_decisions(*, conn: sa.Connection, job_id: str) -> list[sa.Row]:
    return list(conn.execute(sa.select(decisions).where(decisions.c.job_id == job_id).order_by(decisions.c.id)))


def list_jobs(*, conn: sa.Connection, campaign_id: str | None = None) -> list[sa.Row]:
    q = sa.select(jobs).order_by(jobs.c.created_at, jobs.c.id)
    if campaign_id is not None:
        q = q.where(jobs.c.campaign_id == campaign_id)
    return list(conn.execute(q))
