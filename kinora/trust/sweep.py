"""Find and unpublish every live video whose consent no longer holds.

Revocation unpublishes its videos at once (:func:`kinora.trust.cameos.revoke`), and every feed
serve re-checks consent, so a lapsed video is never served. The sweep makes the catalog agree:
it catches what lapses without an owner action on the video itself (an unfollow that ends a
``mutuals`` permission, a user dropped from an approval list, a new restriction that a prompt
breaks) and records why on the video and on each use.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import catalog
from kinora.trust.consent import check_videos


@dataclass(frozen=True)
class Lapsed:
    video_id: str
    cameo_id: str | None
    reason: str


def find_lapsed(*, conn: sa.Connection, settings: Settings, page: int = 1000) -> list[Lapsed]:
    """Check every live video that uses a cameo, ``page`` at a time; return those whose consent lapsed."""
    lapsed: list[Lapsed] = []
    after = None
    while True:
        videos = catalog.live_videos_with_cameos(conn=conn, after_id=after, limit=page)
        if not videos:
            return lapsed
        verdicts = check_videos(conn=conn, videos=videos, max_cameos=settings.consent.max_cameos_per_video)
        lapsed += [Lapsed(v.video_id, v.cameo_id, v.reason) for v in verdicts.values() if not v.holds]
        after = videos[-1].id


def withdraw(*, conn: sa.Connection, lapsed: list[Lapsed]) -> int:
    """Unpublish the lapsed videos and mark their uses withdrawn, each with its reason; return videos unpublished."""
    by_reason: dict[tuple[str | None, str], list[str]] = {}
    for item in lapsed:
        by_reason.setdefault((item.cameo_id, item.reason), []).append(item.video_id)
    for (cameo_id, reason), ids in by_reason.items():
        cameo_store.set_use_status(conn=conn, video_ids=ids, cameo_id=cameo_id, status="withdrawn",
                                   reason=f"consent sweep: {reason}")
    return catalog.unpublish(conn=conn, reasons={i.video_id: f"consent sweep: {i.reason}" for i in lapsed})
