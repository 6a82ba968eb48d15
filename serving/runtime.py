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
# Ray itself is imported inside the functions: see ensure_ray for why.
os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1.0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from kinora.settings import Settings  # noqa: E402

logger = logging.getLogger(__name__)


def ensure_ray(settings: Settings) -> None:
    """Connect to the configured cluster, or start a local Ray bound to loopback.

    On Linux, Ray turns 127.0.0.1 into the machine's routable address (for multi-node use), even
    when ``_node_ip_address`` says loopback. A local Ray must stay on loopback, so before Ray is
    first imported this sets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: the node then binds
    127.0.0.1 only (measured: GCS and raylet listen on 127.0.0.1). A cluster address leaves it alone.
    """
    address = settings.serve.ray_address
    if not address:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:
        logger.warning("Ray was imported before Kinora could keep it on loopback; it may bind a routable address")
    ray.init(
        num_cpus=settings.serve.num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=settings.serve.object_store_mb * 1024 * 1024,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _metrics_export_port=_free_or_none(settings.serve.metrics_export_port),  # Prometheus: Kinora's and Serve's
    )


def _free_or_none(port: int | None) -> int | None:
    """``port`` if nothing listens on it, else None (Ray then picks one) and a warning.

    A local Ray whose driver was SIGKILLed (a crashed flow run) leaves its dashboard agent alive
    for a minute or more, still holding the metrics port; a new Ray asked for the same port then
    times out starting its node. Starting without the fixed port keeps the resumed run going."""
    if not port:
        return port
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            logger.warning("metrics export port %d is taken (a Ray left over from a killed run?); "
                           "this Ray exports its metrics on a port of its own choosing", port)
            return None
    return port


def ray_is_running() -> bool:
    import sys

    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def app_is_running(settings: Settings) -> bool:
    from ray import serve

    try:
        status = serve.status()
    except Exception:  # Serve not started on this cluster
        return False
    app = status.applications.get(settings.serve.app_name)
    return app is not None and str(app.status).endswith("RUNNING")


def start_serve(settings: Settings) -> None:
    """Deploy the application unless it already runs (blocks until it is healthy)."""
    ensure_ray(settings)
    from ray import serve

    from serving.app import build_app

    if app_is_running(settings):
        return
    serve.start(http_options={"host": settings.serve.host, "port": settings.serve.port})
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # serve.start set the driver's Serve logger to INFO
    serve.run(build_app(settings), name=settings.serve.app_name, route_prefix="/", blocking=False)
    logger.info("Serve application %r on %s", settings.serve.app_name, settings.public_base_url)


def generator_handle(settings: Settings) -> "DeploymentHandle":  # noqa: F821 - ray.serve.handle
    from ray import serve

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
    if ray_is_running():
        import ray

        ray.shutdown()
