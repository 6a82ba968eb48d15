"""Rights holders and works."""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import utcnow
from kinora.stores.schema import rights_holders, rights_rescreens, rights_works


def upsert_holder(*, conn: sa.Connection, holder_id: str, name: str, default_policy: str | None = None) -> None:
    """Create the holder if new; set its default policy when one is given (None leaves it as it is)."""
    if conn.execute(sa.select(rights_holders.c.id).where(rights_holders.c.id == holder_id)).first() is None:
        conn.execute(rights_holders.insert().values(id=holder_id, name=name, created_at=utcnow(),
                                                    default_policy=default_policy or "default"))
    elif default_policy is not None:
        conn.execute(rights_holders.update().where(rights_holders.c.id == holder_id,
                                                   rights_holders.c.default_policy != default_policy)
                     .values(default_policy=default_policy))


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
        sa.select(rights_works, rights_holders.c.name.label("holder_name"),
                  rights_holders.c.default_policy.label("holder_default"))
        .join(rights_holders, rights_holders.c.id == rights_works.c.holder_id)
        .order_by(rights_works.c.id)
    )
    return list(conn.execute(q))


def last_rescreen(*, conn: sa.Connection) -> sa.Row | None:
    """The newest finished re-screen of the catalog."""
    q = sa.select(rights_rescreens).where(rights_rescreens.c.finished_at.is_not(None))
    return conn.execute(q.order_by(rights_rescreens.c.id.desc()).limit(1)).first()


def record_rescreen(*, conn: sa.Connection, digest: str, trigger: str, started_at, checked: int, taken_down: int) -> None:
    conn.execute(rights_rescreens.insert().values(registry_digest=digest, trigger=trigger, started_at=started_at,
                                                  finished_at=utcnow(), checked=checked, taken_down=taken_down))


def _registry_state_query() -> sa.Select:
    works = sa.select(sa.func.count(), sa.func.max(rights_works.c.updated_at)).subquery()
    holders = sa.select(sa.func.aggregate_strings(rights_holders.c.id + ":" + rights_holders.c.default_policy, ",")
                        ).scalar_subquery()
    last = (sa.select(rights_rescreens.c.registry_digest).where(rights_rescreens.c.finished_at.is_not(None))
            .order_by(rights_rescreens.c.id.desc()).limit(1).scalar_subquery())
    return sa.select(*works.c, holders, last)


_REGISTRY_STATE = _registry_state_query()  # built once: building it cost more than running it


def registry_state(*, conn: sa.Connection) -> tuple[tuple, str | None]:
    """(a marker that changes whenever a work or a holder default is written, the digest of the
    newest finished re-screen), in one query: the feed asks at every request whether serve-time
    screening can be skipped, and caches its decisions per marker."""
    n, updated, held, digest = conn.execute(_REGISTRY_STATE).one()
    return (n, updated, hash(held or "")), digest
