"""Generation jobs and the decisions taken on them."""

from __future__ import annotations

from datetime import timedelta

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
    api_key_id: str | None = None,
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
                    api_key_id=api_key_id, attempts=0,
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


def cancel_if_queued(*, conn: sa.Connection, job_id: str) -> bool:
    """Cancel the job only while it is still queued; True when it was."""
    result = conn.execute(
        jobs.update().where(jobs.c.id == job_id, jobs.c.status == "queued")
        .values(status="cancelled", reason="cancelled by the client", updated_at=utcnow())
    )
    return result.rowcount == 1


def claim(*, conn: sa.Connection, job_id: str, owner: str, lease_s: float) -> bool:
    """Take the job's lease unless another live owner holds it; counts an attempt. Atomic."""
    now = utcnow()
    result = conn.execute(
        jobs.update()
        .where(
            jobs.c.id == job_id,
            jobs.c.status.in_(("queued", "running")),
            sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now, jobs.c.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_s), attempts=jobs.c.attempts + 1)
    )
    return result.rowcount == 1


def renew(*, conn: sa.Connection, job_id: str, owner: str, lease_s: float) -> bool:
    result = conn.execute(
        jobs.update().where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
    )
    return result.rowcount == 1


def start_running(*, conn: sa.Connection, job_id: str, owner: str) -> bool:
    """Move a claimed job to running; False when it was cancelled or taken over meanwhile."""
    result = conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status.in_(("queued", "running")))
        .values(status="running", updated_at=utcnow())
    )
    return result.rowcount == 1


def release(*, conn: sa.Connection, job_id: str, owner: str) -> None:
    conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                 .values(lease_owner=None, lease_expires_at=None))


def orphaned_api_jobs(*, conn: sa.Connection, limit: int = 100) -> list[sa.Row]:
    """API jobs queued or running whose lease is missing or expired: their worker died, or never started."""
    now = utcnow()
    q = (
        sa.select(jobs)
        .where(
            jobs.c.api_key_id.is_not(None),
            jobs.c.status.in_(("queued", "running")),
            sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        )
        .order_by(jobs.c.created_at)
        .limit(limit)
    )
    return list(conn.execute(q))


def counts_by_status(*, conn: sa.Connection) -> dict[str, int]:
    """How many jobs are in each state (for ``kinora status`` and the metrics)."""
    rows = conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status))
    return {status: n for status, n in rows}


def stuck(*, conn: sa.Connection, older_than_s: float) -> list[sa.Row]:
    """API jobs marked running (or queued under a lease) whose lease lapsed more than
    ``older_than_s`` ago: no replica is working on them and none has taken them over."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    return list(conn.execute(
        sa.select(jobs.c.id, jobs.c.status, jobs.c.lease_owner, jobs.c.lease_expires_at)
        .where(jobs.c.status.in_(("queued", "running")), jobs.c.lease_expires_at.is_not(None),
               jobs.c.lease_expires_at < cutoff)
        .order_by(jobs.c.lease_expires_at).limit(100)))
