"""The feed, with consent re-checked at every serve.

Candidates come newest first (issue #7 replaces the order with ranking); before a page leaves,
every candidate's consent is checked again in one batch (:func:`kinora.trust.consent.check_videos`),
so a video whose cameo was revoked, restricted or un-approved a moment ago is not served, whether
or not the sweep has caught up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from kinora.settings import Settings
from kinora.stores import catalog
from kinora.trust.consent import check_videos


@dataclass
class FeedPage:
    videos: list[sa.Row]
    next_cursor: tuple[datetime, str] | None
    withheld: int  # candidates dropped because consent no longer holds


_MAX_BATCH = 4096  # candidates checked per round once many in a row were withheld


def feed_page(*, conn: sa.Connection, settings: Settings, limit: int, cursor: tuple[datetime, str] | None = None) -> FeedPage:
    """Up to ``limit`` servable videos after ``cursor``.

    Candidates are checked in rounds; a round that withholds some doubles the next round's size,
    so a run of thousands of lapsed videos at the top of the feed (a popular cameo revoked a
    moment ago, before the sweep) costs a few large batched checks, not hundreds of small ones.
    """
    limit = max(1, min(limit, settings.consent.feed_page_max))
    served: list[sa.Row] = []
    withheld = 0
    batch = limit * 2
    while len(served) < limit:
        candidates = catalog.feed_candidates(conn=conn, limit=batch, before=cursor)
        if not candidates:
            cursor = None
            break
        verdicts = check_videos(conn=conn, videos=candidates, max_cameos=settings.consent.max_cameos_per_video)
        for v in candidates:
            cursor = (v.published_at, v.id)
            if verdicts[v.id].holds:
                served.append(v)
                if len(served) == limit:
                    break
            else:
                withheld += 1
        if len(candidates) < batch and len(served) < limit:
            cursor = None
            break
        batch = min(batch * 2, _MAX_BATCH)
    full = catalog.videos_by_ids(conn=conn, ids=[v.id for v in served])
    return FeedPage(videos=[full[v.id] for v in served], next_cursor=cursor if len(served) == limit else None,
                    withheld=withheld)
