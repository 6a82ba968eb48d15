"""Cameos, their approval lists and the consent ledger."""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import utcnow
from kinora.stores.schema import cameo_approvals, cameos, consent_ledger


def upsert_cameo(
    *,
    conn: sa.Connection,
    cameo_id: str,
    handle: str,
    owner_id: str,
    kind: str,
    permission: str,
    verified: bool,
    restrictions: list[str],
) -> bool:
    """Create or update a cameo; return True when anything changed (the caller logs a ledger entry)."""
    row = conn.execute(sa.select(cameos).where(cameos.c.id == cameo_id)).first()
    values = dict(handle=handle, owner_id=owner_id, kind=kind, permission=permission, verified=verified, restrictions=restrictions)
    if row is None:
        conn.execute(cameos.insert().values(id=cameo_id, created_at=utcnow(), revoked_at=None, **values))
        return True
    if any(getattr(row, k) != v for k, v in values.items()):
        conn.execute(cameos.update().where(cameos.c.id == cameo_id).values(**values))
        return True
    return False


def get_cameo(*, conn: sa.Connection, cameo_id: str) -> sa.Row | None:
    return conn.execute(sa.select(cameos).where(cameos.c.id == cameo_id)).first()


def get_cameo_by_handle(*, conn: sa.Connection, handle: str) -> sa.Row | None:
    return conn.execute(sa.select(cameos).where(cameos.c.handle == handle.lstrip("@"))).first()


def set_approved(*, conn: sa.Connection, cameo_id: str, user_ids: list[str]) -> None:
    """Make the approval list exactly ``user_ids``."""
    conn.execute(cameo_approvals.delete().where(cameo_approvals.c.cameo_id == cameo_id))
    if user_ids:
        now = utcnow()
        conn.execute(cameo_approvals.insert(), [dict(cameo_id=cameo_id, user_id=u, created_at=now) for u in user_ids])


def is_approved(*, conn: sa.Connection, cameo_id: str, user_id: str) -> bool:
    return (
        conn.execute(
            sa.select(cameo_approvals.c.user_id).where(
                cameo_approvals.c.cameo_id == cameo_id, cameo_approvals.c.user_id == user_id
            )
        ).first()
        is not None
    )


def revoke_cameo(*, conn: sa.Connection, cameo_id: str) -> None:
    conn.execute(cameos.update().where(cameos.c.id == cameo_id).values(revoked_at=utcnow()))


def append_ledger(*, conn: sa.Connection, cameo_id: str, actor_id: str, action: str, detail: dict) -> int:
    """Append one consent ledger entry and return its sequence number (entries are never updated)."""
    result = conn.execute(
        consent_ledger.insert().values(ts=utcnow(), cameo_id=cameo_id, actor_id=actor_id, action=action, detail=detail)
    )
    return int(result.inserted_primary_key[0])


def latest_ledger_seq(*, conn: sa.Connection, cameo_id: str) -> int | None:
    """Sequence number of the newest grant/change/revoke entry: the grant a use relies on."""
    return conn.execute(
        sa.select(sa.func.max(consent_ledger.c.seq)).where(
            consent_ledger.c.cameo_id == cameo_id, consent_ledger.c.action != "use"
        )
    ).scalar_one()


def list_ledger(*, conn: sa.Connection, cameo_id: str | None = None) -> list[sa.Row]:
    q = sa.select(consent_ledger).order_by(consent_ledger.c.seq)
    if cameo_id:
        q = q.where(consent_ledger.c.cameo_id == cameo_id)
    return list(conn.execute(q))
