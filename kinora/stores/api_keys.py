"""API keys: stored as SHA-256 hashes with their user, scopes and quotas."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import sqlalchemy as sa

from kinora.stores import utcnow
from kinora.stores.schema import api_keys, jobs


def insert_key(
    *, conn: sa.Connection, key_id: str, user_id: str, name: str, key_hash: str, prefix: str, scopes: list[str],
    per_day: int, max_concurrent: int,
) -> None:
    conn.execute(api_keys.insert().values(
        id=key_id, user_id=user_id, name=name, key_hash=key_hash, prefix=prefix, scopes=scopes, per_day=per_day,
        max_concurrent=max_concurrent, created_at=utcnow(), revoked_at=None,
    ))


def get_key_by_hash(*, conn: sa.Connection, key_hash: str) -> sa.Row | None:
    return conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()


@cache
def _key_with_handle() -> sa.Select:
    from kinora.stores.schema import users

    return (sa.select(api_keys, users.c.handle.label("user_handle")).join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.key_hash == sa.bindparam("key_hash")))


def key_with_handle(*, conn: sa.Connection, key_hash: str) -> sa.Row | None:
    """The key with this hash and its user's handle (``user_handle``), in one query built once:
    every request reads it."""
    return conn.execute(_key_with_handle(), {"key_hash": key_hash}).first()


def list_keys(*, conn: sa.Connection) -> list[sa.Row]:
    return list(conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)))


def revoke_key(*, conn: sa.Connection, key_id: str) -> bool:
    result = conn.execute(
        api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return result.rowcount == 1


def count_jobs_since(*, conn: sa.Connection, key_id: str, since: datetime) -> int:
    """Jobs the key submitted since ``since`` (refusals count: they cost a check)."""
    return conn.execute(
        sa.select(sa.func.count()).select_from(jobs).where(jobs.c.api_key_id == key_id, jobs.c.created_at >= since)
    ).scalar_one()


def count_active_jobs(*, conn: sa.Connection, key_id: str) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.api_key_id == key_id, jobs.c.status.in_(("queued", "running"))
        )
    ).scalar_one()
