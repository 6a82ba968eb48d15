"""Kinora's Ray Serve application: a thin HTTP ingress in front of one generator deployment.

    KinoraApi (FastAPI, validation, job API)  ->  VideoGenerator (diffusers pipeline, batched)

Wired in one ``.bind()`` expression by :func:`build_app`; ``serving/config.yaml`` deploys the
same application with ``serve run`` / ``serve deploy`` through :func:`app_builder`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict

from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from kinora.settings import Settings, load_settings

logger = logging.getLogger(__name__)

_QUIET_LOGS = {"log_level": "WARNING", "enable_access_log": False}


@serve.deployment(
    name="VideoGenerator",
    logging_config=_QUIET_LOGS,
    health_check_period_s=10,
    graceful_shutdown_wait_loop_s=0.1,
    graceful_shutdown_timeout_s=2,
)
class VideoGenerator:
    """Holds one loaded pipeline and turns batches of same-shaped requests into clips."""

    def __init__(self, settings: Settings) -> None:
        from models.generation import load_generator  # heavy: import on the replica, not the driver

        self.settings = settings.generation
        self.serve_env_keys = sorted(settings.serve.replica_env)
        t0 = time.perf_counter()
        self.model = load_generator(self.settings)
        self.load_s = time.perf_counter() - t0
        self.batches = 0
        self.batch_sizes: list[int] = []
        self.max_batch_size = self.settings.max_batch_size
        self._one_at_a_time = asyncio.Lock()  # the pipeline (its scheduler) serves one call at a time
        # The batch gate (see generate): requests let into Serve's batch queue and not yet in a running
        # batch, whether a batch runs, and the condition waiters wait on.
        self._forming: set[int] = set()
        self._running = False
        self._gate = asyncio.Condition()
        self._generate_batch.set_max_batch_size(self.settings.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)
        logger.warning("VideoGenerator ready: %s in %.1f s", self.model.model_version, self.load_s)

    def reconfigure(self, user_config: dict) -> None:
        """Tune batching at run time (``user_config`` in serving/config.yaml)."""
        if "max_batch_size" in user_config:
            self.max_batch_size = int(user_config["max_batch_size"])
            self._generate_batch.set_max_batch_size(self.max_batch_size)
        if "batch_wait_timeout_s" in user_config:
            self._generate_batch.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError("generator model is not loaded")

    def check_inputs(self, request) -> None:
        self.model.check_inputs(request)

    async def generate(self, request):
        """Generate one clip (batched with others behind the scenes); raises only for this request."""
        if self.max_batch_size == 1:  # nothing to batch: skip the batch queue and its task hop
            async with self._one_at_a_time:
                result = (await self._run_batch([request]))[0]
        else:
            result = await self._through_the_gate(request)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _through_the_gate(self, request):
        """Enter Serve's batch queue only when the next batch can still take this request.

        ``@serve.batch`` closes a batch ``batch_wait_timeout_s`` after its first request arrives,
        even while the previous batch still runs; under load the next batch was then closed with
        whoever had arrived by then (a mean of 3.0-3.2 of 4 at concurrency 16, measured by
        benchmarks/generation.py), while more requests waited behind it. Here a request waits
        while a batch runs or while max_batch_size requests already wait in the queue, so each
        batch is closed when the pipeline is free for it, as full as the waiting requests allow.
        """
        key = id(request)
        async with self._gate:
            await self._gate.wait_for(lambda: not self._running and len(self._forming) < self.max_batch_size)
            self._forming.add(key)
        try:
            return await self._generate_batch(request)
        finally:
            if key in self._forming:  # it left before its batch started (cancelled): free its place
                self._forming.discard(key)
                async with self._gate:
                    self._gate.notify_all()

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def _generate_batch(self, requests: list) -> list:
        async with self._one_at_a_time:  # also against an unbatched call still running after a reconfigure
            self._running = True
            self._forming.difference_update(id(r) for r in requests)
            try:
                return await self._run_batch(requests)
            finally:
                self._running = False
                async with self._gate:
                    self._gate.notify_all()

    async def _run_batch(self, requests: list) -> list:
        """Generate a batch: each request is checked on its own, then same-shaped ones share a call.

        A request that fails gets its exception back as its result, so one bad request never
        fails the others it was batched with.
        """
        out: list = [None] * len(requests)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            try:
                self.model.check_inputs(r)
            except ValueError as exc:
                out[i] = exc
                continue
            groups[(r.shape_key(), r.reference_image is not None)].append(i)
        for idx in groups.values():
            try:
                clips = await asyncio.to_thread(self.model.generate, [requests[i] for i in idx])
            except Exception as exc:  # noqa: BLE001 - handed to each caller of this group
                clips = [exc] * len(idx)
            for i, clip in zip(idx, clips):
                out[i] = clip
        self.batches += 1
        self.batch_sizes.append(len(requests))
        return out

    def stats(self) -> dict:
        return {"model_version": self.model.model_version, "load_s": self.load_s, "batches": self.batches,
                "batch_sizes": self.batch_sizes[-100:],
                "serve_env": {k: os.environ.get(k) for k in self.serve_env_keys}}


@serve.deployment(
    name="KinoraApi",
    logging_config=_QUIET_LOGS,
    graceful_shutdown_wait_loop_s=0.1,
    graceful_shutdown_timeout_s=2,
    max_ongoing_requests=64,
)
@serve.ingress()
class KinoraApi:
    """HTTP ingress: validation, consent and rights at submit, the job API, stamping and publishing."""

    def __init__(self, generator: DeploymentHandle, settings: Settings) -> None:
        from kinora.provenance.certs import load_signer_material
        from kinora.stores.bundle import Stores

        self.generator = generator
        self.settings = settings
        self.stores = Stores.open(settings)
        self.material = load_signer_material(settings.provenance, settings.cert_dir)
        self._warm_rights_screener()

    def _warm_rights_screener(self) -> None:
        """Load the embedding model and build the screener now, so the replica turns healthy only when
        the first submission can be screened at full speed (loading takes seconds on a busy CPU)."""
        from kinora.trust.rights import screener_for

        with self.stores.engine.connect() as conn:
            screener_for(conn=conn, settings=self.settings.rights)

    async def _generate(self, request):
        return await self.generator.generate.remote(request)

    def __serve_build_asgi_app__(self):
        from serving.api import create_api

        return create_api(settings=self.settings, stores=self.stores, generate=self._generate, material=self.material)

    def check_health(self) -> None:
        import sqlalchemy as sa

        with self.stores.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


def replica_options(settings: Settings) -> dict:
    """``ray_actor_options`` entries every Kinora replica gets: no CPU reservation, serve.replica_env.

    Replicas read these variables at start: user code on the replica's own loop, and the ingress's
    handle routing on its loop. Measured on 2 cores (benchmarks/generation.py): a handle round trip
    that moves no clip 8.3 -> 5.6 ms. Only the replicas get them: a synchronous caller of a handle
    (the campaign flow's tasks) needs the router's own loop, which stays the default. Kinora's
    replicas never block their loop: generation, database work and ranking run in threads.
    """
    env = {"runtime_env": {"env_vars": dict(settings.serve.replica_env)}} if settings.serve.replica_env else {}
    return {"num_cpus": 0, **env}


def generator_app(settings: Settings) -> Application:
    """The generator deployment alone, as settings size it (the benchmark deploys it on its own too)."""
    gen = settings.generation
    return VideoGenerator.options(
        ray_actor_options={**replica_options(settings), "num_gpus": gen.num_gpus},
        max_ongoing_requests=gen.max_ongoing_requests,
        autoscaling_config={
            "min_replicas": gen.num_replicas,
            "max_replicas": max(gen.max_replicas, gen.num_replicas),
            "target_ongoing_requests": gen.max_batch_size,
        },
        user_config={"max_batch_size": gen.max_batch_size, "batch_wait_timeout_s": gen.batch_wait_timeout_s},
    ).bind(settings)


def build_app(settings: Settings) -> Application:
    """Wire the application: the ingress gets a handle to the generator."""
    return KinoraApi.options(ray_actor_options=replica_options(settings)).bind(generator_app(settings), settings)


class BuilderArgs(BaseModel):
    """Arguments ``serve run serving/config.yaml`` passes to :func:`app_builder`."""

    model_config = ConfigDict(extra="forbid")

    settings_overrides: dict = Field(default_factory=dict, description="Settings fields over KINORA_* and the settings file.")


def app_builder(args: dict) -> Application:
    """Entry point named by ``import_path`` in serving/config.yaml."""
    parsed = BuilderArgs.model_validate(args or {})
    return build_app(load_settings(**parsed.settings_overrides))
