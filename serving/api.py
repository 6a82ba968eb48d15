"""The HTTP API app backends call (FastAPI), built as a factory so it runs inside the Serve
ingress replica and, in tests, in-process with the same generator code.

Endpoints: ``POST /v1/generations`` (202 + job id; 403 with the reason when consent or
rights refuse), ``GET /v1/generations/{id}``, ``GET /v1/videos/{id}.mp4``, ``GET /healthz``.
Consent and rights are checked before the 202, so a refused request never reaches a GPU.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kinora import generation
from kinora.ids import new_id, stable_id
from kinora.settings import Settings
from kinora.stores import catalog
from kinora.stores import jobs as job_store
from kinora.stores import users as user_store
from kinora.stores.bundle import Stores

logger = logging.getLogger(__name__)

GenerateFn = Callable[["ClipRequest"], Awaitable["Clip"]]  # noqa: F821 - models.generation.types


class GenerationCreate(BaseModel):
    """Body of ``POST /v1/generations``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    requester: str = Field(min_length=1, max_length=64, description="Handle of the user the video is made for.")
    prompt: str = Field(min_length=1, description="What to generate (length limit from settings).")
    negative_prompt: str = Field("", max_length=2000)
    cameos: list[str] = Field(default_factory=list, max_length=16, description="Cameo handles used.")
    duration_s: float = Field(4.0, gt=0, description="Clip length in seconds.")
    resolution: str | None = Field(None, pattern=r"^\d+x\d+$", description="WIDTHxHEIGHT from the allowed list.")
    fps: int | None = Field(None, gt=0, le=60)
    seed: int | None = Field(None, ge=0, lt=2**63)


class ProvenanceSummary(BaseModel):
    c2pa_state: str | None
    claim_generator: str | None
    visible_mark: str | None
    sha256: str


class VideoOut(BaseModel):
    id: str
    url: str
    thumbnail_url: str
    duration_s: float
    width: int
    height: int
    model_family: str
    model_version: str
    provenance: ProvenanceSummary


class GenerationOut(BaseModel):
    """A job as app backends see it."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "blocked", "cancelled"]
    reason: str | None = None
    created_at: datetime
    updated_at: datetime
    video: VideoOut | None = None


def _field_error(field: str, msg: str, status: int = 422) -> HTTPException:
    return HTTPException(status_code=status, detail=[{"loc": ["body", field], "msg": msg, "type": "value_error"}])


def create_api(*, settings: Settings, stores: Stores, generate: GenerateFn, material) -> FastAPI:
    """Build the API over ``stores``; ``generate`` turns a ClipRequest into a Clip (a Serve handle call in production)."""
    api = FastAPI(title="Kinora API", version="0.1.0")
    background: set[asyncio.Task] = set()
    gen = settings.generation

    def authorise(authorization: str | None = Header(None)) -> None:
        if not settings.serve.api_keys:
            return
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not any(secrets.compare_digest(token, k) for k in settings.serve.api_keys):
            raise HTTPException(status_code=401, detail="missing or invalid bearer key")

    def to_spec(body: GenerationCreate, idempotency_key: str | None) -> generation.GenerationSpec:
        resolution = body.resolution or gen.default_resolution
        fps = body.fps or gen.fps
        problems = generation.limit_problems(gen, prompt=body.prompt, resolution=resolution, duration_s=body.duration_s, fps=fps)
        if problems:
            raise HTTPException(status_code=422, detail=[{"loc": ["body", f], "msg": m, "type": "value_error"} for f, m in problems])
        with stores.engine.connect() as conn:
            requester = user_store.get_user_by_handle(conn=conn, handle=body.requester)
        if requester is None:
            raise _field_error("requester", f"unknown user @{body.requester.lstrip('@')}")
        width, height = (int(x) for x in resolution.split("x"))
        request_id = stable_id("req", "api", requester.id, idempotency_key) if idempotency_key else new_id("req")
        return generation.GenerationSpec(
            request_id=request_id, requester_id=requester.id, requester_handle=requester.handle, prompt=body.prompt,
            negative_prompt=body.negative_prompt, cameos=[c.lstrip("@") for c in body.cameos], width=width, height=height,
            duration_s=body.duration_s, fps=fps,
            seed=body.seed if body.seed is not None else secrets.randbelow(2**31), source="api",
        )

    def job_out(job_id: str) -> GenerationOut:
        with stores.engine.connect() as conn:
            job = job_store.get_job(conn=conn, job_id=job_id)
            if job is None:
                raise HTTPException(status_code=404, detail=f"no generation with id {job_id}")
            video = catalog.get_video(conn=conn, video_id=job.video_id) if job.video_id else None
        out = GenerationOut(id=job.id, status=job.status, reason=job.reason, created_at=job.created_at, updated_at=job.updated_at)
        if video is not None:
            base = settings.public_base_url
            out.video = VideoOut(
                id=video.id, url=f"{base}/v1/videos/{video.id}.mp4", thumbnail_url=f"{base}/v1/videos/{video.id}.jpg",
                duration_s=video.duration_ms / 1000, width=video.width, height=video.height,
                model_family=video.model_family, model_version=video.model_version,
                provenance=ProvenanceSummary(**{**video.provenance, "sha256": video.sha256}),
            )
        return out

    async def run_job(spec: generation.GenerationSpec, admission: generation.Admission) -> None:
        seconds: dict[str, float] = dict(admission.seconds)
        try:
            await asyncio.to_thread(_set_status, stores.engine, spec.request_id, "running")
            t0 = time.perf_counter()
            clip = await generate(generation.clip_request(spec))
            seconds["generate"] = time.perf_counter() - t0
            from kinora.provenance.stamp import stamp_request

            stamped = await asyncio.to_thread(stamp_request, clip, spec=spec, admission=admission, media=stores.media,
                                              material=material, settings=settings)
            seconds["stamp"] = stamped.seconds
            t0 = time.perf_counter()
            video = await asyncio.to_thread(_publish, stores.engine, spec, stamped, settings)
            seconds["publish"] = time.perf_counter() - t0
            if video is None:
                generation.record_outcome(lake=stores.lake, spec=spec, status="blocked_consent",
                                          reason="consent changed before publish", seconds=seconds)
                return
            generation.record_published(lake=stores.lake, spec=spec, video=video, clip=clip, stamped=stamped,
                                        admission=admission, seconds=seconds)
        except Exception as exc:  # a failed job must say why, never vanish
            logger.exception("generation %s failed", spec.request_id)
            await asyncio.to_thread(_fail, stores.engine, spec, f"{type(exc).__name__}: {exc}")
            generation.record_outcome(lake=stores.lake, spec=spec, status="failed", reason=str(exc), seconds=seconds)

    @api.post("/v1/generations", status_code=202, response_model=GenerationOut, dependencies=[Depends(authorise)])
    async def create_generation(body: GenerationCreate, idempotency_key: str | None = Header(None)) -> JSONResponse:
        spec = to_spec(body, idempotency_key)
        created, admission = await asyncio.to_thread(_register_and_admit, stores.engine, spec, settings)
        if not created:  # same Idempotency-Key: answer with the existing job
            return JSONResponse(job_out(spec.request_id).model_dump(mode="json"), status_code=200)
        generation.record_decisions(lake=stores.lake, spec=spec, admission=admission)
        if not admission.allowed:
            generation.record_outcome(lake=stores.lake, spec=spec, status=f"blocked_{admission.stage}", reason=admission.reason,
                                      seconds=admission.seconds)
            body_out = job_out(spec.request_id).model_dump(mode="json") | {"stage": admission.stage}
            return JSONResponse(body_out, status_code=403)
        task = asyncio.create_task(run_job(spec, admission))
        background.add(task)
        task.add_done_callback(background.discard)
        return JSONResponse(job_out(spec.request_id).model_dump(mode="json"), status_code=202)

    @api.get("/v1/generations/{job_id}", response_model=GenerationOut, dependencies=[Depends(authorise)])
    async def get_generation(job_id: str) -> GenerationOut:
        return await asyncio.to_thread(job_out, job_id)

    def media_file(video_id: str, which: str) -> FileResponse:
        with stores.engine.connect() as conn:
            video = catalog.get_video(conn=conn, video_id=video_id)
        if video is None or video.unpublished_at is not None:
            raise HTTPException(status_code=404, detail=f"no published video with id {video_id}")
        key, media_type = (video.media_key, "video/mp4") if which == "mp4" else (video.thumbnail_key, "image/jpeg")
        return FileResponse(stores.media.path(key), media_type=media_type)

    @api.get("/v1/videos/{video_id}.mp4")
    async def get_video_file(video_id: str) -> FileResponse:
        return media_file(video_id, "mp4")

    @api.get("/v1/videos/{video_id}.jpg")
    async def get_thumbnail(video_id: str) -> FileResponse:
        return media_file(video_id, "jpg")

    @api.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(_ping, stores.engine)
        except Exception as exc:  # report, do not raise: this is the health endpoint
            return JSONResponse({"status": "unhealthy", "database": f"{type(exc).__name__}: {exc}"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "jobs_in_flight": len(background)})

    api.state.background = background
    return api


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _set_status(engine: sa.Engine, job_id: str, status: str) -> None:
    with engine.begin() as conn:
        job_store.set_status(conn=conn, job_id=job_id, status=status)


def _fail(engine: sa.Engine, spec: generation.GenerationSpec, reason: str) -> None:
    with engine.begin() as conn:
        generation.fail(conn=conn, spec=spec, reason=reason)


def _register_and_admit(engine: sa.Engine, spec, settings: Settings):
    with engine.begin() as conn:
        if not generation.register(conn=conn, spec=spec):
            return False, None
        return True, generation.admit(conn=conn, spec=spec, settings=settings)


def _publish(engine: sa.Engine, spec, stamped, settings: Settings):
    with engine.begin() as conn:
        return generation.publish(conn=conn, spec=spec, stamped=stamped, settings=settings)
