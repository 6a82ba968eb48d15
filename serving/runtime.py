"""Start or join Ray, run the Serve application, and hand out handles to it.

One machine: a local Ray on loopback (no dashboard, a small object store), Serve's HTTP on
127.0.0.1. Many machines: ``serve.ray_address`` (or ``RAY_ADDRESS``) names the cluster and
the same application is deployed there.
"""

from __future__ import annotations

import logging
import os
import threading
import time

# Read by Ray at import, so set before it. A CPU replica busy generating answers the router's
# queue-length probe slowly on shared cores; the 0.1 s default then floods the log with
# warnings and retries for nothing. Ray 2.60 turns on token auth and writes ~/.ray/auth_token;
# a local single-user Ray on loopback does not need it, and a cluster sets its own mode.
os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1.0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.handle import DeploymentHandle  # noqa: E402

from kinora.settings import Settings

logger = logging.getLogger(__name__)


def ensure_ray(settings: Settings) -> None:
    """Connect to the configured cluster, or start a local Ray bound to loopback."""
    if ray.is_initialized():
        return
    address = settings.serve.ray_address
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    ray.init(
        num_cpus=settings.serve.num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=settings.serve.object_store_mb * 1024 * 1024,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def ray_is_running() -> bool:
    return ray.is_initialized()


def app_is_running(settings: Settings) -> bool:
    try:
        status = serve.status()
    except Exception:  # Serve not started on this cluster
        return False
    app = status.applications.get(settings.serve.app_name)
    return app is not None and str(app.status).endswith("RUNNING")


def start_serve(settings: Settings) -> None:
    """Deploy the application unless it already runs (blocks until it is healthy)."""
    from serving.app import build_app

    ensure_ray(settings)
    if app_is_running(settings):
        return
    serve.start(http_options={"host": settings.serve.host, "port": settings.serve.port})
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # serve.start set the driver's Serve logger to INFO
    serve.run(build_app(settings), name=settings.serve.app_name, route_prefix="/", blocking=False)
    logger.info("Serve application %r on %s", settings.serve.app_name, settings.public_base_url)


def generator_handle(settings: Settings) -> DeploymentHandle:
    return serve.get_deployment_handle("VideoGenerator", app_name=settings.serve.app_name)


_call_slots: dict[int, threading.BoundedSemaphore] = {}


def generate_clip(settings: Settings, request):
    """Generate one clip on the Serve deployment, blocking, at most ``campaign.max_workers`` at once per process.

    The bound keeps one campaign from flooding the generator's queue; Serve batches what arrives together.
    """
    from kinora.generation import note_call_time

    slots = _call_slots.setdefault(settings.campaign.max_workers, threading.BoundedSemaphore(settings.campaign.max_workers))
    with slots:
        t0 = time.perf_counter()
        clip = generator_handle(settings).generate.remote(request).result()
        return note_call_time(clip, time.perf_counter() - t0)


def shutdown() -> None:
    """Stop the local Ray and Serve with it (a no-op when Ray is not running).

    ``ray.shutdown()`` alone takes the Serve actors down; calling ``serve.shutdown()`` first
    only adds a round of controller retries and log noise on a Ray we are about to stop.
    """
    if ray.is_initialized():
        ray.shutdown()
