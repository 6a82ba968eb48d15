"""Cameos, liveness challenges, approval lists, per-video uses and the consent ledger's rows.

SQL only; the rules live in :mod:`kinora.trust` (consent, ledger, cameo registration).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from kinora.stores import existing_pairs, utcnow
from kinora.stores.schema import cameo_approvals, cameo_challenges, cameos, consent_ledger, ledger_head, video_cameo_uses

_IN_CHUNK = 500  # bound parameters per IN list (SQLite allows 32k; keep statements small)


def _chunks(items: list, n: int = _IN_CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# -- cameos ---------------------------------------------------------------------------------
def insert_cameo(*, conn: sa.Connection, values: dict) -> None:
    conn.execute(cameos.insert().values(created_at=utcnow(), revoked_at=None, deleted_at=None, **values))


def update_cameo(*, conn: sa.Connection, cameo_id: str, values: dict) -> None:
    conn.execute(cameos.update().where(cameos.c.id == cameo_id).values(**values))


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
    require_approval: bool = False,
    attestation: dict | None = None,
) -> bool:
    """Create or update a cameo (seeding); return True when anything changed (the caller logs a ledger entry)."""
    row = conn.execute(sa.select(cameos).where(cameos.c.id == cameo_id)).first()
    values = dict(handle=handle, owner_id=owner_id, kind=kind, permission=permission, verified=verified,
                  restrictions=restrictions, require_approval=require_approval)
    if row is None:
        insert_cameo(conn=conn, values=dict(id=cameo_id, attestation=attestation, media=[], **values))
        return True
    if any(getattr(row, k) != v for k, v in values.items()):
        update_cameo(conn=conn, cameo_id=cameo_id, values=values)
        return True
    return False


def get_cameo(*, conn: sa.Connection, cameo_id: str) -> sa.Row | None:
    return conn.execute(sa.select(cameos).where(cameos.c.id == cameo_id)).first()


def get_cameo_by_handle(*, conn: sa.Connection, handle: str) -> sa.Row | None:
    return conn.execute(sa.select(cameos).where(cameos.c.handle == handle.lstrip("@"))).first()


# What a consent check reads of a cameo: not its attestation or media (JSON it would parse and drop).
# Restrictions and timestamps come back unprocessed (SQLite: JSON text and ISO text; PostgreSQL:
# already typed): a consent check only asks whether a timestamp is set, and parses restrictions
# only when there are some (``restrictions_of``). Measured: 40% less time per 12,000 cameos.
CONSENT_VIEW = (
    cameos.c.id, cameos.c.handle, cameos.c.owner_id, cameos.c.permission, cameos.c.verified,
    sa.type_coerce(cameos.c.restrictions, sa.Text).label("restrictions"),
    sa.type_coerce(cameos.c.revoked_at, sa.Text).label("revoked_at"),
    sa.type_coerce(cameos.c.deleted_at, sa.Text).label("deleted_at"),
    cameos.c.require_approval,
)


def restrictions_of(row: sa.Row) -> list[str]:
    """A cameo row's restrictions, whether it came from :data:`CONSENT_VIEW` (JSON text) or a full select."""
    value = row.restrictions
    if isinstance(value, str):
        return json.loads(value) if value not in ("[]", "") else []
    return list(value or [])


def _cameo_select(consent_view: bool) -> sa.Select:
    return sa.select(*CONSENT_VIEW) if consent_view else sa.select(cameos)


def cameos_by_handles(*, conn: sa.Connection, handles: list[str], consent_view: bool = False) -> dict[str, sa.Row]:
    out: dict[str, sa.Row] = {}
    for chunk in _chunks(sorted(set(handles))):
        out.update((r.handle, r) for r in conn.execute(_cameo_select(consent_view).where(cameos.c.handle.in_(chunk))))
    return out


def cameos_by_ids(*, conn: sa.Connection, ids: list[str], consent_view: bool = False) -> dict[str, sa.Row]:
    out: dict[str, sa.Row] = {}
    for chunk in _chunks(sorted(set(ids))):
        out.update((r.id, r) for r in conn.execute(_cameo_select(consent_view).where(cameos.c.id.in_(chunk))))
    return out


def cameos_of_owner(*, conn: sa.Connection, owner_id: str) -> list[sa.Row]:
    return list(conn.execute(sa.select(cameos).where(cameos.c.owner_id == owner_id).order_by(cameos.c.created_at)))


def set_approved(*, conn: sa.Connection, cameo_id: str, user_ids: list[str]) -> None:
    """Make the approval list exactly ``user_ids``."""
    conn.execute(cameo_approvals.delete().where(cameo_approvals.c.cameo_id == cameo_id))
    if user_ids:
        now = utcnow()
        conn.execute(cameo_approvals.insert(), [dict(cameo_id=cameo_id, user_id=u, created_at=now) for u in user_ids])


def approved_users(*, conn: sa.Connection, cameo_id: str) -> list[str]:
    q = sa.select(cameo_approvals.c.user_id).where(cameo_approvals.c.cameo_id == cameo_id).order_by(cameo_approvals.c.user_id)
    return list(conn.execute(q).scalars())


def approved_pairs(*, conn: sa.Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (cameo_id, user_id) pairs among ``pairs`` that are on an approval list."""
    return existing_pairs(conn, cameo_approvals.c.cameo_id, cameo_approvals.c.user_id, pairs)


def is_approved(*, conn: sa.Connection, cameo_id: str, user_id: str) -> bool:
    return bool(approved_pairs(conn=conn, pairs=[(cameo_id, user_id)]))


def revoke_cameo(*, conn: sa.Connection, cameo_id: str) -> None:
    conn.execute(cameos.update().where(cameos.c.id == cameo_id, cameos.c.revoked_at.is_(None)).values(revoked_at=utcnow()))


# -- liveness challenges ----------------------------------------------------------------------
def insert_challenge(*, conn: sa.Connection, values: dict) -> None:
    conn.execute(cameo_challenges.insert().values(created_at=utcnow(), used_at=None, **values))


def get_challenge(*, conn: sa.Connection, challenge_id: str) -> sa.Row | None:
    return conn.execute(sa.select(cameo_challenges).where(cameo_challenges.c.id == challenge_id)).first()


def use_challenge(*, conn: sa.Connection, challenge_id: str) -> bool:
    """Mark the challenge used; False when it already was (a replay, or a concurrent use that won)."""
    done = conn.execute(
        cameo_challenges.update()
        .where(cameo_challenges.c.id == challenge_id, cameo_challenges.c.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return done.rowcount == 1


# -- per-video uses ---------------------------------------------------------------------------
def insert_uses(*, conn: sa.Connection, rows: list[dict]) -> None:
    if rows:
        now = utcnow()
        conn.execute(video_cameo_uses.insert(), [dict(created_at=now, decided_at=None, reason=None, **r) for r in rows])


def uses_of_cameo(*, conn: sa.Connection, cameo_id: str) -> list[sa.Row]:
    q = sa.select(video_cameo_uses).where(video_cameo_uses.c.cameo_id == cameo_id).order_by(video_cameo_uses.c.created_at)
    return list(conn.execute(q))


def uses_of_videos(*, conn: sa.Connection, video_ids: list[str]) -> list[sa.Row]:
    out: list[sa.Row] = []
    for chunk in _chunks(sorted(set(video_ids))):
        out.extend(conn.execute(sa.select(video_cameo_uses).where(video_cameo_uses.c.video_id.in_(chunk))))
    return out


def get_use(*, conn: sa.Connection, cameo_id: str, video_id: str) -> sa.Row | None:
    return conn.execute(
        sa.select(video_cameo_uses).where(video_cameo_uses.c.cameo_id == cameo_id, video_cameo_uses.c.video_id == video_id)
    ).first()


def set_use_status(*, conn: sa.Connection, video_ids: list[str], cameo_id: str | None, status: str, reason: str | None,
                   only_from: tuple[str, ...] = ("active", "pending")) -> int:
    """Move uses of ``video_ids`` (of one cameo, or all) from a live status to ``status``; return rows changed."""
    n = 0
    for chunk in _chunks(sorted(set(video_ids))):
        q = video_cameo_uses.update().where(video_cameo_uses.c.video_id.in_(chunk),
                                            video_cameo_uses.c.status.in_(only_from))
        if cameo_id is not None:
            q = q.where(video_cameo_uses.c.cameo_id == cameo_id)
        n += conn.execute(q.values(status=status, reason=reason, decided_at=utcnow())).rowcount
    return n


# -- consent ledger rows ----------------------------------------------------------------------
def lock_ledger_head(*, conn: sa.Connection) -> sa.Row:
    """Take the head row's write lock (an UPDATE that changes nothing), then read it."""
    conn.execute(ledger_head.update().where(ledger_head.c.id == 1).values(seq=ledger_head.c.seq))
    return conn.execute(sa.select(ledger_head).where(ledger_head.c.id == 1)).one()


def get_ledger_head(*, conn: sa.Connection) -> sa.Row | None:
    return conn.execute(sa.select(ledger_head).where(ledger_head.c.id == 1)).first()


def set_ledger_head(*, conn: sa.Connection, seq: int, count: int, entry_hash: str, signature: str) -> None:
    conn.execute(ledger_head.update().where(ledger_head.c.id == 1).values(
        seq=seq, count=count, entry_hash=entry_hash, signature=signature, updated_at=utcnow()))


def insert_ledger_entry(*, conn: sa.Connection, ts: datetime, cameo_id: str, actor_id: str, action: str, detail: dict) -> int:
    result = conn.execute(
        consent_ledger.insert().values(ts=ts, cameo_id=cameo_id, actor_id=actor_id, action=action, detail=detail)
    )
    return int(result.inserted_primary_key[0])


def get_ledger_entry(*, conn: sa.Connection, seq: int) -> sa.Row:
    return conn.execute(sa.select(consent_ledger).where(consent_ledger.c.seq == seq)).one()


def ledger_entries_after(*, conn: sa.Connection, seq: int) -> list[sa.Row]:
    return list(conn.execute(sa.select(consent_ledger).where(consent_ledger.c.seq > seq).order_by(consent_ledger.c.seq)))


def seal_ledger_entry(*, conn: sa.Connection, seq: int, prev_hash: str, entry_hash: str, signature: str, key_id: str) -> None:
    conn.execute(consent_ledger.update().where(consent_ledger.c.seq == seq, consent_ledger.c.entry_hash.is_(None)).values(
        prev_hash=prev_hash, entry_hash=entry_hash, signature=signature, key_id=key_id))


def latest_grant_seqs(*, conn: sa.Connection, cameo_ids: list[str]) -> dict[str, int]:
    """Per cameo, the seq of the newest entry that set its consent (not a use): the grant a use relies on."""
    out: dict[str, int] = {}
    for chunk in _chunks(sorted(set(cameo_ids))):
        q = (
            sa.select(consent_ledger.c.cameo_id, sa.func.max(consent_ledger.c.seq))
            .where(consent_ledger.c.cameo_id.in_(chunk), consent_ledger.c.action.in_(GRANT_ACTIONS))
            .group_by(consent_ledger.c.cameo_id)
        )
        out.update((cid, int(seq)) for cid, seq in conn.execute(q))
    return out


# Entries that set a cameo's consent state; "use" and use decisions do not.
GRANT_ACTIONS = ("grant", "change", "approve_users", "revoke", "delete")


def list_ledger(*, conn: sa.Connection, cameo_id: str | None = None, cameo_ids: list[str] | None = None) -> list[sa.Row]:
    q = sa.select(consent_ledger).order_by(consent_ledger.c.seq)
    if cameo_id:
        q = q.where(consent_ledger.c.cameo_id == cameo_id)
    if cameo_ids is not None:
        q = q.where(consent_ledger.c.cameo_id.in_(cameo_ids))
    return list(conn.execute(q))


def ledger_by_actor(*, conn: sa.Connection, actor_id: str) -> list[sa.Row]:
    return list(conn.execute(sa.select(consent_ledger).where(consent_ledger.c.actor_id == actor_id).order_by(consent_ledger.c.seq)))
