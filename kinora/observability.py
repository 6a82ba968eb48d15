"""What operators see of a running Kinora: structured JSON logs and Prometheus metrics.

**Logs.** :func:`trace` writes one JSON object per line (``python-json-logger``) for each step of a
generation, keyed by its ``request_id`` (the job id, the same for an API request and a campaign
item, and the ``job_id`` of the video it becomes): ``generation.submitted`` -> ``.admitted`` or
``.blocked`` -> ``.published`` or ``.failed``, with the stage, the reason, the device and the
video id. Every process (Serve replicas, flows, the CLI) appends to its own file under
``observability.log_dir`` (``<home>/logs``), so no two processes ever interleave a line, and with
``observability.log_stderr`` also to stderr, where Ray and container runtimes collect it.
``kinora trace REQUEST_ID`` finds the lines of one request again.

**Metrics.** Counters, histograms and gauges are Ray metrics (``ray.util.metrics``): each Ray node's
metrics agent serves them with Ray Serve's own (request rates and latencies per deployment, queue
lengths, replica health) in Prometheus format on ``serve.metrics_export_port`` (9095 on a local
Ray; a cluster sets ``ray start --metrics-export-port``), aggregated across replicas. Outside a
Ray process (an in-process API in a test, a CLI command) they are no-ops.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from kinora.settings import Settings

TRACE_LOGGER = "kinora.trace"
_configured: dict = {}  # the process's current trace handlers and what they were made for
_lock = threading.Lock()


# -- logs ----------------------------------------------------------------------------------------

def configure(settings: Settings) -> None:
    """Send this process's trace lines to ``<log_dir>/<host>-<pid>.jsonl`` (and stderr when set).

    Idempotent; a process has one data home, so configuring another one (tests do) moves the
    trace there rather than writing every line twice."""
    from pythonjsonlogger.json import JsonFormatter

    log_dir = settings.log_dir
    key = (str(log_dir), os.getpid(), settings.observability.log_stderr)
    with _lock:
        if _configured.get("key") == key:
            return
        logger = logging.getLogger(TRACE_LOGGER)
        for handler in _configured.get("handlers", []):
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the trace is data: it does not go to the human-readable root log
        fmt = JsonFormatter("{levelname}{name}{message}", style="{", timestamp="ts",  # ISO 8601, UTC, microseconds
                            rename_fields={"levelname": "level", "name": "logger", "message": "event"},
                            json_ensure_ascii=False)
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers: list[logging.Handler] = [
            logging.FileHandler(log_dir / f"{socket.gethostname()}-{os.getpid()}.jsonl", encoding="utf-8")]
        if settings.observability.log_stderr:
            handlers.append(logging.StreamHandler())
        for handler in handlers:
            handler.setFormatter(fmt)
            logger.addHandler(handler)
        _configured.update(key=key, handlers=handlers)


def trace(event: str, *, request_id: str, **fields) -> None:
    """One step of a request's life as a structured line (no-op until :func:`configure` ran)."""
    logging.getLogger(TRACE_LOGGER).info(event, extra={"request_id": request_id, "pid": os.getpid(),
                                                       **{k: v for k, v in fields.items() if v is not None}})


def read_trace(log_dir: Path, request_id: str) -> Iterator[dict]:
    """Every trace line of ``request_id`` under ``log_dir``, oldest first."""
    lines = []
    for path in sorted(Path(log_dir).glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if request_id in line:
                    doc = json.loads(line)
                    if doc.get("request_id") == request_id:
                        lines.append(doc)
    return iter(sorted(lines, key=lambda d: d["ts"]))


# -- metrics -------------------------------------------------------------------------------------

class _Noop:
    def inc(self, *_a, **_k) -> None: ...
    def observe(self, *_a, **_k) -> None: ...
    def set(self, *_a, **_k) -> None: ...


class _Safe:
    """A Ray metric that can never fail the request recording it: Ray raises on a zero increment
    (a batch of only duplicates) and on a tag it does not know; such a sample is dropped and logged."""

    def __init__(self, metric) -> None:
        self._m = metric

    def _call(self, fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - metrics are best effort
            logging.getLogger(__name__).debug("metric sample dropped", exc_info=True)

    def inc(self, value: float = 1.0, tags: dict | None = None) -> None:
        if value > 0:
            self._call(self._m.inc, value, tags=tags)

    def observe(self, value: float, tags: dict | None = None) -> None:
        self._call(self._m.observe, value, tags=tags)

    def set(self, value: float, tags: dict | None = None) -> None:
        self._call(self._m.set, value, tags=tags)


def _ray_up() -> bool:
    import sys

    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


class Metrics:
    """Kinora's metrics, created once per process (Ray metrics register by name)."""

    def __init__(self) -> None:
        if not _ray_up():
            noop = _Noop()
            self.http_requests = self.http_latency = self.feed_latency = self.events = noop
            self.jobs = self.inflight = self.generations = noop
            return
        from ray.util import metrics as ray_metrics

        def make(kind: str, name: str, description: str, tags: tuple[str, ...] = (), **kw) -> _Safe:
            return _Safe(getattr(ray_metrics, kind)(name, description=description, tag_keys=tags, **kw))

        ms = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]
        self.http_requests = make("Counter", "kinora_http_requests", "HTTP requests by route and status.",
                                  ("route", "method", "status"))
        self.http_latency = make("Histogram", "kinora_http_request_ms", "HTTP request latency, ms.", ("route",),
                                 boundaries=ms)
        self.feed_latency = make("Histogram", "kinora_feed_ms", "Ranked feed requests, ms.", boundaries=ms)
        self.events = make("Counter", "kinora_events_ingested", "Engagement events by outcome.", ("outcome",))
        self.jobs = make("Gauge", "kinora_jobs", "Generation jobs by state (the operational store).", ("state",))
        self.inflight = make("Gauge", "kinora_api_jobs_in_flight", "API jobs this replica is generating.")
        self.generations = make("Counter", "kinora_generations", "Requests by final outcome and source.",
                                ("outcome", "source"))


_metrics: Metrics | None = None


def metrics() -> Metrics:
    """This process's metrics (real inside Ray, no-ops elsewhere)."""
    global _metrics
    with _lock:
        if _metrics is None or (isinstance(_metrics.jobs, _Noop) and _ray_up()):
            _metrics = Metrics()
        return _metrics
