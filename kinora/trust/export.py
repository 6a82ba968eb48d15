"""A person's full consent and usage history, as one JSON document (``kinora consent export``).

What it holds: the person; every cameo they own (state, verification, approvals, every ledger
entry with its hash, every video or draft that uses it); and every use they made of other
people's cameos. Reference media are listed by kind, never included.
"""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import cameos as cameo_store
from kinora.stores import users as user_store
from kinora.trust import cameos as service


def _entry(row: sa.Row, handles: dict[str, str]) -> dict:
    return {"seq": row.seq, "ts": row.ts.isoformat(), "action": row.action, "cameo_id": row.cameo_id,
            "actor": handles.get(row.actor_id, row.actor_id), "detail": row.detail, "entry_hash": row.entry_hash,
            "prev_hash": row.prev_hash}


def export_user(*, conn: sa.Connection, handle: str) -> dict:
    """Everything the ledger and the catalog know about ``handle``'s consent; KeyError if no such user."""
    user = user_store.get_user_by_handle(conn=conn, handle=handle)
    if user is None:
        raise KeyError(f"unknown user @{handle.lstrip('@')}")
    owned = cameo_store.cameos_of_owner(conn=conn, owner_id=user.id)
    entries = cameo_store.list_ledger(conn=conn, cameo_ids=[c.id for c in owned]) if owned else []
    own_uses = [e for e in cameo_store.ledger_by_actor(conn=conn, actor_id=user.id) if e.action == "use"]
    actor_ids = {e.actor_id for e in entries} | {user.id}
    handles = {u.id: u.handle for u in user_store.users_by_ids(conn=conn, ids=list(actor_ids)).values()}
    cameos = []
    for c in owned:
        att = c.attestation or {}
        cameos.append({
            "handle": c.handle, "id": c.id, "kind": c.kind, "permission": c.permission,
            "restrictions": list(c.restrictions or []), "require_approval": bool(c.require_approval),
            "approved": sorted(handles.get(u, u) for u in cameo_store.approved_users(conn=conn, cameo_id=c.id)),
            "verified": bool(c.verified),
            "verification": {k: att.get(k) for k in ("verifier", "verdict", "issued_at", "checked", "not_checked")} if att else None,
            "reference_media": [m["kind"] for m in c.media or []],
            "created_at": c.created_at.isoformat(), "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            "deleted_at": c.deleted_at.isoformat() if c.deleted_at else None,
            "ledger": [_entry(e, handles) for e in entries if e.cameo_id == c.id],
            "uses": [{**u, "created_at": u["created_at"].isoformat()} for u in service.uses_of(conn=conn, cameo_id=c.id)],
        })
    other_ids = {e.cameo_id for e in own_uses}
    other = cameo_store.cameos_by_ids(conn=conn, ids=list(other_ids)) if other_ids else {}
    return {
        "user": {"id": user.id, "handle": user.handle, "display_name": user.display_name},
        "cameos": cameos,
        "uses_of_others_cameos": [
            {**_entry(e, handles), "cameo": other[e.cameo_id].handle if e.cameo_id in other else e.cameo_id}
            for e in own_uses if e.cameo_id not in {c.id for c in owned}
        ],
    }
