"""Runs API jobs inside an ingress replica: generate, stamp, publish, with a lease on each job.

Jobs live in the operational store, not in memory. A replica works on a job only while it
holds the job's lease (renewed as it works); at most ``max_inflight_jobs`` go to the
generator at once, the rest wait queued (and can be cancelled). Every replica periodically
claims API jobs whose lease is missing or expired, so a job whose replica died is finished
by another, or by the restarted one. A generator replica lost mid-request is retried; after
``max_attempts`` the job fails with the reason. No job is left "running" forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from kinora import generation
from kinora.errors import one_line
from kinora.settings import Settings
from kinora.stores import jobs as job_store
from kinora.stores.bundle import Stores

logger = logging.getLogger(__name__)

GenerateFn = Callable[["ClipRequest"], Awaitable["Clip"]]  # noqa: F821 - models.generation.types


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the replica went away", worth another attempt."""
    try:
        from ray.exceptions import ActorUnavailableError, RayActorError

        return (RayActorError, ActorUnavailableError, ConnectionError, TimeoutError)
    except ImportError:  # in-process use without Ray
        return (ConnectionError, TimeoutError)


class JobWorker:
    """Owns the API jobs this replica works on."""

    def __init__(self, *, settings: Settings, stores: Stores, generate: GenerateFn, material) -> None:
        self.settings, self.stores, self.generate, self.material = settings, stores, generate, material
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.slots = asyncio.Semaphore(settings.serve.max_inflight_jobs)
        self.tasks: dict[str, asyncio.Task] = {}
        self.transient = _transient_errors()

    # -- scheduling -------------------------------------------------------------------------
    def submit(self, spec: generation.GenerationSpec, admission: generation.Admission | None = None) -> None:
        """Work on the job in the background (no-op if this replica already is)."""
        if spec.request_id in self.tasks:
            return
        task = asyncio.create_task(self._run(spec, admission))
        self.tasks[spec.request_id] = task
        task.add_done_callback(lambda _t, rid=spec.request_id: self.tasks.pop(rid, None))

    async def recover_forever(self) -> None:
        """Claim orphaned jobs every ``recovery_interval_s`` (first pass at once)."""
        while True:
            try:
                await self.recover_once()
            except Exception:  # keep looking: a database blip must not end recovery
                logger.exception("job recovery pass failed")
            await asyncio.sleep(self.settings.serve.recovery_interval_s)

    async def recover_once(self) -> int:
        await asyncio.to_thread(self._report_jobs)
        rows = await asyncio.to_thread(self._orphans)
        n = 0
        for row in rows:
            if row.id not in self.tasks:
                self.submit(_spec_from_row(row))
                n += 1
        if n:
            logger.warning("recovering %d orphaned generation jobs", n)
        return n

    def _report_jobs(self) -> None:
        """Jobs by state (the store's, so every replica reports the same) and this replica's in flight."""
        from kinora.observability import metrics

        with self.stores.engine.connect() as conn:
            counts = job_store.counts_by_status(conn=conn)
        m = metrics()
        for state in ("queued", "running", "succeeded", "failed", "blocked", "cancelled"):
            m.jobs.set(counts.get(state, 0), tags={"state": state})
        m.inflight.set(len(self.tasks))

    def _orphans(self) -> list[sa.Row]:
        with self.stores.engine.connect() as conn:
            return job_store.orphaned_api_jobs(conn=conn)

    # -- one job ----------------------------------------------------------------------------
    async def _run(self, spec: generation.GenerationSpec, admission: generation.Admission | None) -> None:
        s = self.settings.serve
        async with self.slots:  # waiting here, the job is "queued" and can be cancelled
            claimed, attempts = await asyncio.to_thread(self._claim, spec.request_id)
            if not claimed:
                return  # cancelled, finished, or another replica holds it
            renewer = asyncio.create_task(self._renew(spec.request_id))
            try:
                if attempts > s.max_attempts:
                    await asyncio.to_thread(self._fail, spec, f"gave up after {s.max_attempts} attempts (workers lost)")
                    return
                if admission is None:  # recovered job: checks again, consent may have changed meanwhile
                    admission = await asyncio.to_thread(self._readmit, spec)
                    if not admission.allowed:
                        return
                if not await asyncio.to_thread(self._start, spec.request_id):
                    return  # cancelled just now
                await self._make(spec, admission)
            finally:
                renewer.cancel()
                await asyncio.to_thread(self._release, spec.request_id)

    async def _make(self, spec: generation.GenerationSpec, admission: generation.Admission) -> None:
        from kinora.provenance.stamp import stamp_request

        seconds = dict(admission.seconds)
        try:
            t0 = time.perf_counter()
            clip = generation.note_call_time(await self._generate_with_retries(spec), time.perf_counter() - t0)
            stamped = await asyncio.to_thread(stamp_request, clip, spec=spec, admission=admission, media=self.stores.media,
                                              material=self.material, settings=self.settings)
            t0 = time.perf_counter()
            video = await asyncio.to_thread(self._publish, spec, stamped)
            seconds["publish"] = time.perf_counter() - t0
        except Exception as exc:  # a failed job must say why, never vanish or hang
            logger.exception("generation %s failed", spec.request_id)
            reason = one_line(exc)
            await asyncio.to_thread(self._fail, spec, reason)
            generation.record_outcome(lake=self.stores.lake, spec=spec, status="failed", reason=reason, seconds=seconds)
            return
        if video is None:
            generation.record_outcome(lake=self.stores.lake, spec=spec, status="blocked_consent",
                                      reason="consent changed before publish", seconds=seconds)
            return
        generation.record_published(lake=self.stores.lake, spec=spec, video=video, clip=clip, stamped=stamped,
                                    admission=admission, seconds=seconds)

    async def _generate_with_retries(self, spec: generation.GenerationSpec):
        attempts = self.settings.serve.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                request = await asyncio.to_thread(generation.clip_request, spec, self.stores.media, self.settings,
                                                  self.stores.engine)
                return await self.generate(request)
            except self.transient as exc:
                if attempt == attempts:
                    raise
                logger.warning("generator lost during %s (%s); attempt %d of %d", spec.request_id, exc, attempt + 1, attempts)
                await asyncio.sleep(min(2.0 * attempt, 10.0))
        raise AssertionError("unreachable")

    async def _renew(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.serve.job_lease_s / 3)
            await asyncio.to_thread(self._tx, job_store.renew, job_id=job_id, owner=self.owner, lease_s=self.settings.serve.job_lease_s)

    # -- store calls (run in threads) -------------------------------------------------------
    def _tx(self, fn, **kwargs):
        with self.stores.engine.begin() as conn:
            return fn(conn=conn, **kwargs)

    def _claim(self, job_id: str) -> tuple[bool, int]:
        with self.stores.engine.begin() as conn:
            ok = job_store.claim(conn=conn, job_id=job_id, owner=self.owner, lease_s=self.settings.serve.job_lease_s)
            job = job_store.get_job(conn=conn, job_id=job_id)
        return ok, (job.attempts if job else 0)

    def _start(self, job_id: str) -> bool:
        return self._tx(job_store.start_running, job_id=job_id, owner=self.owner)

    def _release(self, job_id: str) -> None:
        self._tx(job_store.release, job_id=job_id, owner=self.owner)

    def _fail(self, spec: generation.GenerationSpec, reason: str) -> None:
        self._tx(generation.fail, spec=spec, reason=reason)

    def _readmit(self, spec: generation.GenerationSpec) -> generation.Admission:
        with self.stores.engine.begin() as conn:
            return generation.admit(conn=conn, spec=spec, settings=self.settings)

    def _publish(self, spec: generation.GenerationSpec, stamped):
        with self.stores.engine.begin() as conn:
            return generation.publish(conn=conn, spec=spec, stamped=stamped, settings=self.settings)


def _spec_from_row(row: sa.Row) -> generation.GenerationSpec:
    """Rebuild a spec from its stored job (``params`` holds everything but the ids and prompt)."""
    return generation.GenerationSpec(request_id=row.id, requester_id=row.requester_id, prompt=row.prompt,
                                     campaign_id=row.campaign_id, **row.params)
