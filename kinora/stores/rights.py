"""Rights holders and works."""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import utcnow
from kinora.stores.schema import rights_holders, rights_works


def upsert_holder(*, conn: sa.Connection, holder_id: str, name: str) -> None:
    if conn.execute(sa.select(rights_holders.c.id).where(rights_holders.c.id == holder_id)).first() is None:
        conn.execute(rights_holders.insert().values(id=holder_id, name=name, created_at=utcnow()))


def upsert_work(
    *,
    conn: sa.Connection,
    work_id: str,
    holder_id: str,
    name: str,
    kind: str,
    aliases: list[str],
    description: str,
    policy: str,
    terms: dict | None,
) -> None:
    values = dict(
        holder_id=holder_id, name=name, kind=kind, aliases=aliases, description=description,
        policy=policy, terms=terms, updated_at=utcnow(),
    )
    if conn.execute(sa.select(rights_works.c.id).where(rights_works.c.id == work_id)).first() is None:
        conn.execute(rights_works.insert().values(id=work_id, **values))
    else:
        conn.execute(rights_works.update().where(rights_works.c.id == work_id).values(**values))


def list_works(*, conn: sa.Connection) -> list[sa.Row]:
    """Every work with its holder's name, in a stable order."""
    q = (
        sa.select(rights_works, rights_holders.c.name.label("holder_name"))
        .join(rights_holders, rights_holders.c.id == rights_works.c.holder_id)
        .order_by(rights_works.c.id)
    )
    return list(conn.execute(q))
