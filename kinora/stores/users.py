"""Users and the follow graph."""

from __future__ import annotations

import sqlalchemy as sa

from kinora.stores import existing_pairs, utcnow
from kinora.stores.schema import follows, users


def upsert_user(*, conn: sa.Connection, user_id: str, handle: str, display_name: str) -> None:
    """Create the user or update its display name (seeding is idempotent)."""
    row = conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first()
    if row is None:
        conn.execute(users.insert().values(id=user_id, handle=handle, display_name=display_name, created_at=utcnow()))
    else:
        conn.execute(users.update().where(users.c.id == user_id).values(handle=handle, display_name=display_name))


def get_user_by_handle(*, conn: sa.Connection, handle: str) -> sa.Row | None:
    return conn.execute(sa.select(users).where(users.c.handle == handle.lstrip("@"))).first()


def get_user(*, conn: sa.Connection, user_id: str) -> sa.Row | None:
    return conn.execute(sa.select(users).where(users.c.id == user_id)).first()


def add_follow(*, conn: sa.Connection, follower_id: str, followee_id: str) -> None:
    exists = conn.execute(
        sa.select(follows.c.follower_id).where(
            follows.c.follower_id == follower_id, follows.c.followee_id == followee_id
        )
    ).first()
    if exists is None:
        conn.execute(follows.insert().values(follower_id=follower_id, followee_id=followee_id, created_at=utcnow()))


def are_mutuals(*, conn: sa.Connection, a: str, b: str) -> bool:
    """True when a follows b and b follows a."""
    n = conn.execute(
        sa.select(sa.func.count()).select_from(follows).where(
            sa.or_(
                sa.and_(follows.c.follower_id == a, follows.c.followee_id == b),
                sa.and_(follows.c.follower_id == b, follows.c.followee_id == a),
            )
        )
    ).scalar_one()
    return n == 2


def remove_follow(*, conn: sa.Connection, follower_id: str, followee_id: str) -> bool:
    done = conn.execute(follows.delete().where(follows.c.follower_id == follower_id, follows.c.followee_id == followee_id))
    return done.rowcount == 1


def follow_pairs(*, conn: sa.Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (follower, followee) pairs among ``pairs`` that exist."""
    return existing_pairs(conn, follows.c.follower_id, follows.c.followee_id, pairs)


def users_by_ids(*, conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row]:
    out: dict[str, sa.Row] = {}
    items = sorted(set(ids))
    for i in range(0, len(items), 500):
        out.update((r.id, r) for r in conn.execute(sa.select(users).where(users.c.id.in_(items[i : i + 500]))))
    return out
