"""The analytics refresh: bring the dashboards' semantic layer up to date.

    snapshot the catalog -> compact the small lake tables -> roll up the days whose events changed
      -> recompute the derived tables (cohorts, active users, retention)

Incremental: a day of events is rolled up again only when its lake partition (or the previous
day's, which attribution reads) changed, so a run after a quiet interval takes about as long as
the catalog snapshot. Scheduled every five minutes in ``prefect.yaml``; ``kinora analytics
refresh`` runs it by hand, and the dashboard's "Refresh now" button too.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dashboards.layer import RefreshReport, refresh_all
from kinora.settings import Settings, load_settings


@task(cache_policy=NO_CACHE)
def refresh_layer(settings: Settings, full: bool) -> RefreshReport:
    """Snapshot, compact, roll up and derive (one pass of :func:`dashboards.layer.refresh_all`)."""
    return refresh_all(settings, full=full, progress=get_run_logger().info)


@flow(name="analytics-refresh", log_prints=False)
def analytics_refresh(full: bool = False) -> dict:
    """Refresh the analytics layer from the lake, the catalog and the ranker registry (settings from KINORA_*)."""
    report = refresh_layer(load_settings(), full)
    return {"refreshed_at": report.refreshed_at, "days_rebuilt": report.days_rebuilt, "seconds": report.seconds}
