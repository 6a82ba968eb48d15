"""Re-screen the catalog against the rights registry as it is now, and take down what it blocks.

    changed? (registry digest vs the last re-screen) -> find_blocked (pages of videos in
    circulation, each with its remix chain) -> take_down (one transaction) -> record

A holder who opts out after publication expects the videos that use their work to go; a remix
goes with its source, since the source's rights carry over. Videos are screened for their
creator, as they were when made, so a public figure's cameo that still permits the creator keeps
the video up. The ``rights-rescreen`` flow runs this on a schedule (a no-op while the registry is
unchanged); ``kinora rights import`` runs it after every import that changed the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import catalog, utcnow
from kinora.stores import rights as rights_store
from kinora.trust.rights import registry_digest, screen_items, with_sources


@dataclass(frozen=True)
class TakeDown:
    video_id: str
    reason: str


@dataclass
class RescreenResult:
    digest: str
    skipped: bool = False  # the registry had not changed since the last re-screen
    checked: int = 0
    taken_down: list[TakeDown] = field(default_factory=list)


def needs_rescreen(*, conn: sa.Connection, settings: Settings) -> tuple[bool, str]:
    """Whether the registry (or the screening settings) changed since the last finished re-screen."""
    digest = registry_digest(conn=conn, settings=settings.rights)
    last = rights_store.last_rescreen(conn=conn)
    return last is None or last.registry_digest != digest, digest


def find_blocked(*, conn: sa.Connection, settings: Settings, page: int = 1000) -> tuple[int, list[TakeDown]]:
    """Screen every video in circulation (with its remix chain), ``page`` at a time; return (checked, blocked)."""
    checked, blocked, after = 0, [], None
    while True:
        videos = catalog.videos_in_circulation(conn=conn, after_id=after, limit=page)
        if not videos:
            return checked, blocked
        rows = catalog.lineage(conn=conn, video_ids=[v.remix_of for v in videos if v.remix_of])
        chains = [catalog.sources_of(v.remix_of, rows) for v in videos]
        items = [(p, v.creator_id) for v, chain in zip(videos, chains) for p in [v.prompt, *(s.prompt for s in chain)]]
        decisions = iter(screen_items(conn=conn, items=items, settings=settings.rights,
                                      max_cameos=settings.consent.max_cameos_per_video))
        for video, chain in zip(videos, chains):
            own = next(decisions)
            decision = with_sources(own, [(s.id, next(decisions)) for s in chain], video.prompt)
            if not decision.allowed:
                blocked.append(TakeDown(video.id, decision.reason))
        checked += len(videos)
        after = videos[-1].id


def take_down(*, conn: sa.Connection, blocked: list[TakeDown]) -> int:
    """Unpublish each video with its reason and end its cameo uses; return how many were in circulation."""
    reasons = {t.video_id: f"rights rescreen: {t.reason}" for t in blocked}
    by_reason: dict[str, list[str]] = {}
    for vid, why in reasons.items():
        by_reason.setdefault(why, []).append(vid)
    for why, ids in by_reason.items():
        cameo_store.set_use_status(conn=conn, video_ids=ids, cameo_id=None, status="withdrawn", reason=why)
    return catalog.unpublish(conn=conn, reasons=reasons)


def rescreen(*, conn: sa.Connection, settings: Settings, trigger: str = "manual", force: bool = False,
             page: int = 1000) -> RescreenResult:
    """The whole re-screen in one transaction (the caller's): skipped unless the registry changed or ``force``."""
    started = utcnow()
    changed, digest = needs_rescreen(conn=conn, settings=settings)
    if not (changed or force):
        return RescreenResult(digest=digest, skipped=True)
    checked, blocked = find_blocked(conn=conn, settings=settings, page=page)
    take_down(conn=conn, blocked=blocked)
    rights_store.record_rescreen(conn=conn, digest=digest, trigger=trigger, started_at=started, checked=checked,
                                 taken_down=len(blocked))
    return RescreenResult(digest=digest, checked=checked, taken_down=blocked)
