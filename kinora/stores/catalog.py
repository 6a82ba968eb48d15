"""The catalog of published videos."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import sqlalchemy as sa

from kinora.stores.schema import videos

# The feed runs a dozen of these per request. Building a SQLAlchemy statement (and its cache key)
# costs several times what SQLite takes to run it, so the feed's statements are built once, with
# ``expanding`` bind parameters for their id lists, and only executed per request.
_IDS = sa.bindparam("ids", expanding=True)


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


def get_video_by_content_id(*, conn: sa.Connection, content_id: int) -> sa.Row | None:
    """The video whose invisible watermark carries ``content_id`` (48 bits; unique in practice)."""
    return conn.execute(sa.select(videos).where(videos.c.content_id == content_id).limit(1)).first()


def get_video_by_job(*, conn: sa.Connection, job_id: str) -> sa.Row | None:
    return conn.execute(sa.select(videos).where(videos.c.job_id == job_id)).first()


def list_published(*, conn: sa.Connection, since: datetime | None = None) -> list[sa.Row]:
    q = sa.select(videos).where(videos.c.published_at.is_not(None), videos.c.unpublished_at.is_(None))
    if since is not None:
        q = q.where(videos.c.published_at >= since)
    return list(conn.execute(q.order_by(videos.c.published_at, videos.c.id)))


def videos_by_ids(*, conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row]:
    out: dict[str, sa.Row] = {}
    items = sorted(set(ids))
    for i in range(0, len(items), 500):
        out.update((r.id, r) for r in conn.execute(sa.select(videos).where(videos.c.id.in_(items[i : i + 500]))))
    return out


@cache
def _videos_with_creators() -> sa.Select:
    from kinora.stores.schema import users

    return (sa.select(videos, users.c.handle.label("creator_handle"))
            .select_from(videos.outerjoin(users, users.c.id == videos.c.creator_id)).where(videos.c.id.in_(_IDS)))


def videos_with_creators(*, conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row]:
    """:func:`videos_by_ids` plus each creator's handle (``creator_handle``, None for an unknown
    creator) in the same query: a feed page needs both."""
    out: dict[str, sa.Row] = {}
    items = sorted(set(ids))
    for i in range(0, len(items), 500):
        out.update((r.id, r) for r in conn.execute(_videos_with_creators(), {"ids": items[i:i + 500]}))
    return out


# What the feed's consent re-check reads of a candidate; the full rows are loaded for the served ones only.
CANDIDATE_COLUMNS = (videos.c.id, videos.c.published_at, videos.c.creator_id, videos.c.prompt, videos.c.cameo_ids)
# What the ranked feed reads of its (many) candidates: no JSON to decode, only whether cameos are used.
RANK_COLUMNS = (videos.c.id, videos.c.published_at, videos.c.creator_id, videos.c.prompt,
                (sa.type_coerce(videos.c.cameo_ids, sa.Text) != "[]").label("has_cameos"))


def feed_candidates(*, conn: sa.Connection, limit: int, before: tuple[datetime, str] | None = None,
                    columns: tuple = CANDIDATE_COLUMNS) -> list[sa.Row]:
    """Live videos, newest first, after the (published_at, id) cursor ``before`` (:data:`CANDIDATE_COLUMNS` only)."""
    q = sa.select(*columns).where(videos.c.published_at.is_not(None), videos.c.unpublished_at.is_(None))
    if before is not None:
        ts, vid = before
        q = q.where(sa.or_(videos.c.published_at < ts, sa.and_(videos.c.published_at == ts, videos.c.id < vid)))
    return list(conn.execute(q.order_by(videos.c.published_at.desc(), videos.c.id.desc()).limit(limit)))


def live_videos_with_cameos(*, conn: sa.Connection, after_id: str | None, limit: int) -> list[sa.Row]:
    """Published, live videos that use at least one cameo, in id order (the sweep's pages; :data:`CANDIDATE_COLUMNS`)."""
    from kinora.stores.schema import video_cameo_uses

    has_use = sa.select(video_cameo_uses.c.video_id).where(video_cameo_uses.c.video_id == videos.c.id).exists()
    q = sa.select(*CANDIDATE_COLUMNS).where(videos.c.published_at.is_not(None), videos.c.unpublished_at.is_(None), has_use)
    if after_id is not None:
        q = q.where(videos.c.id > after_id)
    return list(conn.execute(q.order_by(videos.c.id).limit(limit)))


def unpublish(*, conn: sa.Connection, reasons: dict[str, str]) -> int:
    """Take each video in ``reasons`` (id -> why) out of circulation; return how many were live."""
    from kinora.stores import utcnow

    now, n = utcnow(), 0
    by_reason: dict[str, list[str]] = {}
    for vid, why in reasons.items():
        by_reason.setdefault(why, []).append(vid)
    for why, ids in by_reason.items():
        for i in range(0, len(ids), 500):
            n += conn.execute(videos.update().where(videos.c.id.in_(ids[i : i + 500]), videos.c.unpublished_at.is_(None))
                              .values(unpublished_at=now, unpublished_reason=why)).rowcount
    return n


def publish_draft(*, conn: sa.Connection, video_id: str) -> bool:
    from kinora.stores import utcnow

    done = conn.execute(videos.update().where(videos.c.id == video_id, videos.c.published_at.is_(None),
                                              videos.c.unpublished_at.is_(None)).values(published_at=utcnow()))
    return done.rowcount == 1


# What the rights re-screen reads of each video.
SCREEN_COLUMNS = (videos.c.id, videos.c.creator_id, videos.c.prompt, videos.c.remix_of)


def videos_in_circulation(*, conn: sa.Connection, after_id: str | None, limit: int) -> list[sa.Row]:
    """Published videos and drafts not taken down, in id order (:data:`SCREEN_COLUMNS`, a page at a time)."""
    q = sa.select(*SCREEN_COLUMNS).where(videos.c.unpublished_at.is_(None))
    if after_id is not None:
        q = q.where(videos.c.id > after_id)
    return list(conn.execute(q.order_by(videos.c.id).limit(limit)))


def lineage(*, conn: sa.Connection, video_ids: list[str], max_depth: int = 50) -> dict[str, sa.Row]:
    """Every ancestor of ``video_ids`` through ``remix_of`` (taken down or not), by id (:data:`SCREEN_COLUMNS`)."""
    found: dict[str, sa.Row] = {}
    frontier = {v for v in video_ids if v}
    for _ in range(max_depth):
        frontier -= found.keys()
        if not frontier:
            break
        items = sorted(frontier)
        frontier = set()
        for i in range(0, len(items), 500):
            for row in conn.execute(sa.select(*SCREEN_COLUMNS).where(videos.c.id.in_(items[i : i + 500]))):
                found[row.id] = row
                if row.remix_of:
                    frontier.add(row.remix_of)
    return found


def sources_of(video_id: str | None, rows: dict[str, sa.Row]) -> list[sa.Row]:
    """The remix chain above a video, parent first, from rows :func:`lineage` returned (stops at a cycle)."""
    chain, seen = [], set()
    while video_id and video_id in rows and video_id not in seen:
        seen.add(video_id)
        chain.append(rows[video_id])
        video_id = rows[video_id].remix_of
    return chain


# -- ranked feed candidates (issue #7) -----------------------------------------------------------
def _live():
    return sa.and_(videos.c.published_at.is_not(None), videos.c.unpublished_at.is_(None))


@cache
def _live_among(columns: tuple) -> sa.Select:
    return sa.select(*columns).where(_live(), videos.c.id.in_(_IDS))


def live_among(*, conn: sa.Connection, ids: list[str], columns: tuple = CANDIDATE_COLUMNS) -> list[sa.Row]:
    """The live videos among ``ids`` (:data:`CANDIDATE_COLUMNS`)."""
    out: list[sa.Row] = []
    items = sorted(set(ids))
    for i in range(0, len(items), 500):
        out += conn.execute(_live_among(columns), {"ids": items[i:i + 500]}).all()
    return out


@cache
def _live_by_creators(columns: tuple) -> sa.Select:
    return (sa.select(*columns).where(_live(), videos.c.creator_id.in_(_IDS))
            .order_by(videos.c.published_at.desc()).limit(sa.bindparam("limit")))


def live_by_creators(*, conn: sa.Connection, creator_ids: list[str], limit: int,
                     columns: tuple = CANDIDATE_COLUMNS) -> list[sa.Row]:
    """Newest live videos of the given creators."""
    if not creator_ids:
        return []
    return conn.execute(_live_by_creators(columns), {"ids": creator_ids[:500], "limit": limit}).all()


@cache
def _live_with_cameos_of(columns: tuple) -> sa.Select:
    from kinora.stores.schema import cameos, video_cameo_uses

    return (sa.select(*columns).distinct()
            .select_from(videos.join(video_cameo_uses, video_cameo_uses.c.video_id == videos.c.id)
                         .join(cameos, cameos.c.id == video_cameo_uses.c.cameo_id))
            .where(_live(), video_cameo_uses.c.status == "active", cameos.c.owner_id.in_(_IDS))
            .order_by(videos.c.published_at.desc()).limit(sa.bindparam("limit")))


def live_with_cameos_of(*, conn: sa.Connection, owner_ids: list[str], limit: int,
                        columns: tuple = CANDIDATE_COLUMNS) -> list[sa.Row]:
    """Newest live videos that use a cameo owned by one of ``owner_ids`` (friends' cameos)."""
    if not owner_ids:
        return []
    return conn.execute(_live_with_cameos_of(columns), {"ids": owner_ids[:500], "limit": limit}).all()


@cache
def _follow_queries() -> tuple[sa.Select, sa.Select]:
    from kinora.stores.schema import follows

    return (sa.select(follows.c.followee_id).where(follows.c.follower_id == sa.bindparam("user_id")),
            sa.select(follows.c.follower_id).where(follows.c.followee_id == sa.bindparam("user_id"),
                                                   follows.c.follower_id.in_(_IDS)))


def followees_and_friends(*, conn: sa.Connection, user_id: str) -> tuple[list[str], list[str]]:
    """Whom ``user_id`` follows, and which of them follow back (friends)."""
    followees, followers = _follow_queries()
    out = list(conn.execute(followees, {"user_id": user_id}).scalars())
    back = set(conn.execute(followers, {"user_id": user_id, "ids": out[:500]}).scalars()) if out else set()
    return out, [u for u in out if u in back]


@cache
def _hidden_by() -> sa.Select:
    from kinora.stores.schema import hidden_videos

    return sa.select(hidden_videos.c.video_id).where(hidden_videos.c.user_id == sa.bindparam("user_id"))


def hidden_by(*, conn: sa.Connection, user_id: str) -> set[str]:
    return set(conn.execute(_hidden_by(), {"user_id": user_id}).scalars())
