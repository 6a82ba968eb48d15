"""The health of every component of one Kinora, for ``kinora status``.

Each check is quick (a query, a file listing, one HTTP call with a short timeout), says ``ok``,
``warn`` or ``down`` with one line of detail, and never raises: an operator runs this when
something is wrong, so the command must answer about everything else while one part is down.
Required components (store, lake, media) being down gives exit status 1; the rest are reported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Literal

from kinora.settings import Settings

State = Literal["ok", "warn", "down"]


@dataclass
class Check:
    component: str
    state: State
    detail: str
    required: bool = False
    seconds: float = 0.0


def _timed(component: str, required: bool, fn) -> Check:
    t0 = time.perf_counter()
    try:
        state, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a status command reports, it does not raise
        state, detail = "down", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return Check(component, state, detail, required, round(time.perf_counter() - t0, 3))


def _mtime(info: dict) -> float | None:
    """A listing entry's modification time (local: ``mtime``; S3: ``LastModified``)."""
    value = info.get("mtime") or info.get("LastModified")
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value) if value is not None else None


def _age(ts: float) -> str:
    s = max(0.0, time.time() - ts)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def check_store(settings: Settings, *, stuck_after_s: float) -> list[Check]:
    from kinora.stores import jobs as job_store
    from kinora.stores.db import current_revision, head_revision, make_engine

    engine = make_engine(settings.database_url, busy_timeout_s=2.0)
    url = engine.url.render_as_string(hide_password=True)

    def store():
        rev, head = current_revision(engine), head_revision()
        if rev != head:
            return "warn", f"{url}: schema at {rev}, code expects {head} (run `kinora db migrate`)"
        return "ok", f"{url}: schema {rev} (current)"

    def jobs():
        with engine.connect() as conn:
            counts = job_store.counts_by_status(conn=conn)
            stuck = job_store.stuck(conn=conn, older_than_s=stuck_after_s)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no jobs yet"
        if stuck:
            return "warn", f"{len(stuck)} stuck (lease lapsed over {stuck_after_s:.0f} s ago, e.g. {stuck[0].id}); {detail}"
        return "ok", detail

    out = [_timed("store", True, store)]
    out.append(_timed("jobs", False, jobs) if out[0].state != "down" else Check("jobs", "down", "store unreachable"))
    engine.dispose()
    return out


def check_files(settings: Settings) -> list[Check]:
    from kinora.stores.objects import lake_place, media_place

    def writable(where) -> None:
        """Write and remove a probe object (raises when the place refuses)."""
        if where.local:
            os.makedirs(where.root, exist_ok=True)
        probe = where.path(f".status-{socket.gethostname()}-{os.getpid()}")
        where.fs.pipe_file(probe, b"ok")
        where.fs.rm_file(probe)

    def lake():
        where = lake_place(settings)
        writable(where)
        found = where.fs.glob(where.path("*", "date=*", "*.parquet"), detail=True)
        if not found:
            return "ok", f"{where}: writable, empty"
        stamps = [_mtime(i) for i in found.values()]
        newest = max((t for t in stamps if t is not None), default=None)
        age = f", newest written {_age(newest)} ago" if newest is not None else ""
        return "ok", f"{where}: {len(found):,} files{age}"

    def media():
        where = media_place(settings)
        writable(where)
        return "ok", f"{where}: writable"

    def analytics():
        from dashboards.layer import refreshed_at

        when = refreshed_at(settings.analytics_dir)
        if when is None:
            return "warn", "never refreshed (the analytics-refresh flow, or `kinora analytics refresh`)"
        age = (dt.datetime.now(dt.timezone.utc) - when).total_seconds()
        state = "warn" if age > settings.dashboard.stale_after_s else "ok"
        return state, f"refreshed {_age(when.timestamp())} ago" + (" (stale)" if state == "warn" else "")

    def ranker():
        from kinora.ranking.registry import Registry

        reg = Registry(settings.ranking_dir)
        versions, prod = reg.list(), reg.production()
        if prod is None:
            return "warn", f"no version in production ({len(versions)} trained): the feed orders by freshness"
        return "ok", f"production {prod} ({len(versions)} versions)"

    return [_timed("lake", True, lake), _timed("media", True, media), _timed("analytics", False, analytics),
            _timed("ranker", False, ranker)]


def check_api(settings: Settings, *, timeout_s: float) -> Check:
    def api():
        url = f"{settings.public_base_url}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            return "down", f"{url}: {exc.code} {exc.read()[:200].decode(errors='replace')}"
        return "ok", f"{url}: {body.get('status')} (database {body.get('database')}, jobs in flight {body.get('jobs_in_flight')})"

    return _timed("api (Serve)", False, api)


def check_ray(settings: Settings, api: Check, *, timeout_s: float) -> Check:
    def ray_():
        address = settings.serve.ray_address
        if not address or address == "auto":  # a local Ray lives as long as the Serve app it runs
            return api.state, "local Ray" + (", serving the API" if api.state == "ok" else ": not running (no API)")
        hostport = address.split("://", 1)[-1]
        host, _, port = hostport.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
        return "ok", f"{address}: reachable"

    return _timed("ray", False, ray_)


def check_prefect(*, timeout_s: float) -> Check:
    def prefect():
        from prefect.settings import get_current_settings  # Prefect's own settings (PREFECT_API_URL)

        url = get_current_settings().api.url
        if not url:
            return "ok", "no server configured: flows run against a temporary local API"
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as resp:
            return ("ok" if resp.status == 200 else "down"), f"{url}: {resp.status}"

    return _timed("prefect", False, prefect)


def status(settings: Settings, *, timeout_s: float = 2.0) -> list[Check]:
    """Every check, in the order an operator reads them."""
    stuck_after = max(60.0, 3 * settings.serve.job_lease_s)
    api = check_api(settings, timeout_s=timeout_s)
    return [*check_store(settings, stuck_after_s=stuck_after), *check_files(settings), api,
            check_ray(settings, api, timeout_s=timeout_s), check_prefect(timeout_s=timeout_s)]


def healthy(checks: list[Check]) -> bool:
    return not any(c.required and c.state == "down" for c in checks)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"healthy": healthy(checks), "components": [asdict(c) for c in checks]})

