"""The rights re-screen: when the registry changes, screen the catalog again and take down what it blocks.

    changed? -> find_blocked (pages of videos in circulation, with their remix chains) -> take_down -> record

Scheduled every five minutes in ``prefect.yaml``; a run finds the registry digest unchanged and
returns at once unless a holder's works or terms (or the screening settings) changed since the
last re-screen. ``kinora rights import`` re-screens right after an import that changed the
registry; ``kinora rights rescreen`` runs it by hand.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from kinora.settings import Settings, load_settings
from kinora.stores import rights as rights_store
from kinora.stores import utcnow
from kinora.stores.bundle import Stores
from kinora.trust.rescreen import TakeDown, find_blocked, needs_rescreen, take_down


class RescreenSummary(BaseModel):
    registry_digest: str
    skipped: bool
    checked: int
    taken_down: int
    screened_seconds: float
    reasons: dict[str, int]  # reason -> videos


@task(cache_policy=NO_CACHE)
def registry_changed(settings: Settings, force: bool) -> tuple[bool, str]:
    with Stores.open(settings).engine.connect() as conn:
        changed, digest = needs_rescreen(conn=conn, settings=settings)
    return changed or force, digest


@task(cache_policy=NO_CACHE)
def find(settings: Settings, page: int) -> tuple[int, list[TakeDown]]:
    with Stores.open(settings).engine.connect() as conn:
        return find_blocked(conn=conn, settings=settings, page=page)


@task(cache_policy=NO_CACHE)
def take_down_and_record(settings: Settings, blocked: list[TakeDown], digest: str, started, checked: int) -> int:
    """One transaction: the take-downs and the record of this re-screen land together or not at all."""
    with Stores.open(settings).engine.begin() as conn:
        n = take_down(conn=conn, blocked=blocked)
        rights_store.record_rescreen(conn=conn, digest=digest, trigger="schedule", started_at=started, checked=checked,
                                     taken_down=len(blocked))
    return n


@flow(name="rights-rescreen", log_prints=False)
def rights_rescreen(page: int = 1000, force: bool = False) -> RescreenSummary:
    """Re-screen every video in circulation if the registry changed (settings from KINORA_*)."""
    settings = load_settings()
    logger = get_run_logger()
    started = utcnow()
    run, digest = registry_changed(settings, force)
    if not run:
        logger.info("rights rescreen: registry %s unchanged since the last re-screen", digest[:12])
        return RescreenSummary(registry_digest=digest, skipped=True, checked=0, taken_down=0, screened_seconds=0.0,
                               reasons={})
    t0 = time.perf_counter()
    checked, blocked = find(settings, page)
    seconds = time.perf_counter() - t0
    n = take_down_and_record(settings, blocked, digest, started, checked)
    reasons: dict[str, int] = {}
    for item in blocked:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    logger.info("rights rescreen: %d videos checked in %.2f s, %d taken down", checked, seconds, n)
    return RescreenSummary(registry_digest=digest, skipped=False, checked=checked, taken_down=n,
                           screened_seconds=round(seconds, 3), reasons=reasons)
