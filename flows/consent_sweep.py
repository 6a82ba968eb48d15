"""The consent sweep: unpublish every live video whose consent no longer holds, and say why.

    find_lapsed (pages of live videos that use cameos, checked in batches) -> withdraw (one transaction)

Feeds already withhold such videos at serve time; the sweep makes the catalog agree, so lists,
exports and analytics see the same truth. Scheduled every five minutes in ``prefect.yaml``;
``kinora consent sweep`` runs it by hand.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from kinora.settings import Settings, load_settings
from kinora.stores.bundle import Stores
from kinora.trust.sweep import Lapsed, find_lapsed, withdraw


class SweepSummary(BaseModel):
    checked_seconds: float
    lapsed: int
    unpublished: int
    reasons: dict[str, int]  # reason -> videos


@task(cache_policy=NO_CACHE)
def find(settings: Settings, page: int) -> list[Lapsed]:
    stores = Stores.open(settings)
    with stores.engine.connect() as conn:
        return find_lapsed(conn=conn, settings=settings, page=page)


@task(cache_policy=NO_CACHE)
def unpublish(settings: Settings, lapsed: list[Lapsed]) -> int:
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        return withdraw(conn=conn, lapsed=lapsed)


@flow(name="consent-sweep", log_prints=False)
def consent_sweep(page: int = 1000) -> SweepSummary:
    """Find every live video whose consent lapsed and unpublish it with the reason (settings from KINORA_*)."""
    settings = load_settings()
    logger = get_run_logger()
    t0 = time.perf_counter()
    lapsed = find(settings, page)
    checked = time.perf_counter() - t0
    n = unpublish(settings, lapsed) if lapsed else 0
    reasons: dict[str, int] = {}
    for item in lapsed:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    logger.info("consent sweep: %d lapsed, %d unpublished (checked in %.2f s)", len(lapsed), n, checked)
    return SweepSummary(checked_seconds=round(checked, 3), lapsed=len(lapsed), unpublished=n, reasons=reasons)
