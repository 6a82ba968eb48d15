"""The HTTP API app backends call (FastAPI), built as a factory so it runs inside the Serve
ingress replica and, in tests, in-process with the same generator code.

Every endpoint but ``/healthz`` needs an API key (``Authorization: Bearer kin_...``) with the
scope it names. Consent and rights are checked before the 202, so a refused request never
reaches a GPU. Jobs live in the operational store and are worked on by :mod:`serving.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kinora import auth, generation, observability
from kinora.ids import new_id, stable_id
from kinora.settings import Settings
from kinora.stores import catalog
from kinora.stores import jobs as job_store
from kinora.stores import users as user_store
from kinora.events import IngestResult
from kinora.feed import feed_page
from kinora.provenance.verify import VerifyReport, verification_row
from kinora.stores.bundle import Stores
from kinora.trust.consent import check_videos
from serving.cameo_routes import cameo_router
from serving.media_files import media_response
from serving.uploads import read_limited_body
from serving.worker import JobWorker

logger = logging.getLogger(__name__)

GenerateFn = Callable[["ClipRequest"], Awaitable["Clip"]]  # noqa: F821 - models.generation.types


class GenerationCreate(BaseModel):
    """Body of ``POST /v1/generations``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    requester: str | None = Field(None, min_length=1, max_length=64,
                                  description="Handle the video is made for; default the key's user. Another user needs scope generations:act_as.")
    prompt: str = Field(min_length=1, description="What to generate (length limit from settings).")
    negative_prompt: str = Field("", max_length=2000)
    cameos: list[str] = Field(default_factory=list, max_length=16, description="Cameo handles used.")
    duration_s: float = Field(4.0, gt=0, description="Clip length in seconds (limits from settings).")
    resolution: str | None = Field(None, pattern=r"^\d+x\d+$", description="WIDTHxHEIGHT from the allowed list.")
    fps: int | None = Field(None, gt=0, le=60)
    seed: int | None = Field(None, ge=0, lt=2**63)
    remix_of: str | None = Field(None, max_length=40, description="Id of a published video to remix; its cameos' consent is checked too.")


class EventsIn(BaseModel):
    """A batch of engagement events (the contract: see ``kinora/events.py``)."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict] = Field(min_length=1, description="Events: event_id, ts, user_id, video_id, event_type, "
                                                         "watch_ms (views), position and request_id (impressions).")


class ProvenanceSummary(BaseModel):
    c2pa_state: str | None
    claim_generator: str | None
    visible_mark: str | None
    sha256: str
    content_id: str | None = Field(None, description="The invisible watermark's content id (12 hex digits).")


class VideoOut(BaseModel):
    """A published video's metadata."""

    id: str
    url: str
    thumbnail_url: str
    duration_s: float
    width: int
    height: int
    fps: int
    prompt: str
    creator: str
    model_family: str
    model_version: str
    seed: int
    published_at: datetime | None
    provenance: ProvenanceSummary
    position: int | None = Field(None, description="Ranked feed: the slot it was served in (logged as an impression).")
    score: float | None = Field(None, description="Ranked feed: the ranker's score (weighted sum of head probabilities).")
    reasons: list[str] | None = Field(None, description="Ranked feed: why it is there (top signals).")


class GenerationOut(BaseModel):
    """A job as app backends see it."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "blocked", "cancelled"]
    reason: str | None = None
    stage: str | None = Field(None, description="On a 403: which check refused (consent or rights).")
    created_at: datetime
    updated_at: datetime
    video: VideoOut | None = None


class FeedOut(BaseModel):
    videos: list[VideoOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; absent on the last page.")
    withheld: int = Field(description="Candidates withheld from this page because their consent (or rights) no longer holds.")
    request_id: str | None = Field(None, description="Ranked feed: the feed request (impressions carry it).")
    model_version: str | None = Field(None, description="Ranked feed: the ranker version that ordered it (none: by freshness).")
    candidates: int | None = Field(None, description="Ranked feed: candidates ranked for this request.")


class ErrorOut(BaseModel):
    """Every error: a message, or for 422 a list of {loc, msg, type} naming the field."""

    detail: str | list[dict]


def _errors(*codes: int) -> dict:
    text = {401: "No or invalid API key.", 403: "The key lacks the scope, or consent/rights refused (see reason).",
            404: "No such job or video for this key.", 409: "The job is no longer queued.",
            413: "The upload is over the size limit.", 416: "The Range lies outside the file.",
            422: "The body breaks a limit; detail names the field.", 429: "Quota exceeded; see Retry-After."}
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


def _json(body: str) -> Response:
    """A JSON body already serialised from its response model (in the worker thread, by pydantic):
    FastAPI would otherwise validate the model a second time and encode it on the event loop."""
    return Response(content=body, media_type="application/json")


def _field_errors(problems: list[tuple[str, str]]) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"loc": ["body", f], "msg": m, "type": "value_error"} for f, m in problems])


class _RouteMetrics:
    """Request count and latency per route template (not per path: ids would explode the series).

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs
    each request in a task group with memory streams, a cost every feed request paid."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            m = observability.metrics()
            m.http_requests.inc(tags={"route": route, "method": scope["method"], "status": str(status[0])})
            m.http_latency.observe((time.perf_counter() - t0) * 1000, tags={"route": route})


def create_api(*, settings: Settings, stores: Stores, generate: GenerateFn, material) -> FastAPI:
    """Build the API over ``stores``; ``generate`` turns a ClipRequest into a Clip (a Serve handle call in production)."""
    worker = JobWorker(settings=settings, stores=stores, generate=generate, material=material)
    gen = settings.generation
    anchors_file = settings.provenance.trust_anchors_path
    trust_anchors = (getattr(material, "root_pem", None) or b"") + (anchors_file.read_bytes() if anchors_file else b"") or None

    ranking: dict = {}
    ranking_lock = threading.Lock()

    def feed_ranking():
        """The serving ranker, the per-request orderings and the impression log (made on first use)."""
        with ranking_lock:
            if not ranking:
                from kinora.ranking.impressions import ImpressionLog
                from kinora.ranking.serving import RankedLists, ServingRanker

                ranking["ranker"] = ServingRanker(settings)
                ranking["lists"] = RankedLists()
                ranking["impressions"] = ImpressionLog(engine=stores.engine, lake=stores.lake,
                                                       flush_s=settings.ranking.impression_flush_s)
                # Ranked feed requests run one at a time per replica, first come first served: the
                # work is CPU in Python, and threads taking turns on the interpreter lock made every
                # request slower (measured: p99 50 ms vs 27 ms at 4 concurrent requests).
                ranking["executor"] = ThreadPoolExecutor(max_workers=settings.ranking.feed_threads,
                                                         thread_name_prefix="feed-rank")
            return ranking

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        recovery = asyncio.create_task(worker.recover_forever())
        yield
        if ranking:
            await asyncio.to_thread(ranking["impressions"].flush)
            ranking["executor"].shutdown(wait=False)
        recovery.cancel()
        for task in list(worker.tasks.values()):
            task.cancel()

    api = FastAPI(title="Kinora API", version="0.1.0", lifespan=lifespan,
                  description="Text to short video with consent, rights and provenance. Authenticate with "
                              "`Authorization: Bearer <key>` (create keys with `kinora keys create`).")
    api.state.worker = worker
    api.state.feed_ranking = feed_ranking
    observability.configure(settings)

    api.add_middleware(_RouteMetrics)

    @api.exception_handler(auth.AuthError)
    async def _auth_error(_request: Request, exc: auth.AuthError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    def principal(authorization: str | None) -> auth.Principal:
        with stores.engine.connect() as conn:
            return auth.authenticate(conn=conn, authorization=authorization)

    def scoped(scope: str):
        # async, with the one database read in a worker thread: a sync dependency would cost a
        # thread hop of its own (two per request with the principal's), which the feed notices
        async def dependency(authorization: str | None = Header(None, description="Bearer <API key>")) -> auth.Principal:
            who = await run_in_threadpool(principal, authorization)
            who.require(scope)
            return who
        return dependency

    def visible_job(conn: sa.Connection, job_id: str, who: auth.Principal) -> sa.Row:
        job = job_store.get_job(conn=conn, job_id=job_id)
        if job is None or not (job.api_key_id == who.key_id or job.requester_id == who.user_id
                               or "generations:act_as" in who.scopes):
            raise HTTPException(status_code=404, detail=f"no generation with id {job_id}")
        return job

    def video_out(conn: sa.Connection, video: sa.Row) -> VideoOut:
        base = settings.public_base_url
        if "creator_handle" in video._fields:  # read with the video (catalog.videos_with_creators: the feeds)
            handle = video.creator_handle
        else:
            creator = user_store.get_user(conn=conn, user_id=video.creator_id)
            handle = creator.handle if creator else None
        return VideoOut(
            id=video.id, url=f"{base}/v1/videos/{video.id}.mp4", thumbnail_url=f"{base}/v1/videos/{video.id}.jpg",
            duration_s=video.duration_ms / 1000, width=video.width, height=video.height, fps=video.fps,
            prompt=video.prompt, creator=handle or video.creator_id,
            model_family=video.model_family, model_version=video.model_version, seed=video.seed,
            published_at=video.published_at, provenance=ProvenanceSummary(**{**video.provenance, "sha256": video.sha256}),
        )

    def job_out(job_id: str, who: auth.Principal) -> GenerationOut:
        with stores.engine.connect() as conn:
            job = visible_job(conn, job_id, who)
            video = catalog.get_video(conn=conn, video_id=job.video_id) if job.video_id else None
            out = GenerationOut(id=job.id, status=job.status, reason=job.reason, created_at=job.created_at,
                                updated_at=job.updated_at)
            if video is not None and video.unpublished_at is None:
                out.video = video_out(conn, video)
        return out

    def to_spec(body: GenerationCreate, who: auth.Principal, idempotency_key: str | None) -> generation.GenerationSpec:
        resolution = body.resolution or gen.default_resolution
        fps = body.fps or gen.fps
        problems = generation.limit_problems(gen, prompt=body.prompt, resolution=resolution, duration_s=body.duration_s, fps=fps)
        if problems:
            raise _field_errors(problems)
        handle = (body.requester or who.user_handle).lstrip("@")
        if handle != who.user_handle:
            who.require("generations:act_as")
        remix_key, inherited = None, []
        with stores.engine.connect() as conn:
            requester = user_store.get_user_by_handle(conn=conn, handle=handle)
            if body.remix_of:
                try:
                    remix_key, inherited = generation.resolve_remix(conn=conn, video_id=body.remix_of)
                except generation.RemixError as exc:
                    raise _field_errors([("remix_of", str(exc))]) from None
        if requester is None:
            raise _field_errors([("requester", f"unknown user @{handle}")])
        cameos = list(dict.fromkeys([c.lstrip("@") for c in body.cameos] + inherited))
        width, height = (int(x) for x in resolution.split("x"))
        request_id = stable_id("req", "api", who.key_id, idempotency_key) if idempotency_key else new_id("req")
        return generation.GenerationSpec(
            request_id=request_id, requester_id=requester.id, requester_handle=requester.handle, prompt=body.prompt,
            negative_prompt=body.negative_prompt, cameos=cameos, width=width, height=height,
            duration_s=body.duration_s, fps=fps, seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
            source="api", remix_of=body.remix_of, remix_media_key=remix_key,
        )

    def register_and_admit(spec: generation.GenerationSpec, who: auth.Principal):
        with stores.engine.begin() as conn:
            if job_store.get_job(conn=conn, job_id=spec.request_id) is not None:
                return False, None  # same Idempotency-Key: no second job, no quota spent
            auth.check_quota(conn=conn, principal=who)
            generation.register(conn=conn, spec=spec, api_key_id=who.key_id)
            return True, generation.admit(conn=conn, spec=spec, settings=settings)

    @api.post("/v1/generations", status_code=202, response_model=GenerationOut,
              responses={200: {"model": GenerationOut, "description": "Same Idempotency-Key: the existing job."},
                         **_errors(401, 403, 422, 429)})
    async def create_generation(
        body: GenerationCreate,
        who: auth.Principal = Depends(scoped("generations:write")),
        idempotency_key: str | None = Header(None, max_length=200, description="Retries with the same key return the same job."),
    ) -> JSONResponse:
        """Submit a generation. Consent and rights are checked now: 403 with the reason when refused."""
        spec = to_spec(body, who, idempotency_key)
        created, admission = await asyncio.to_thread(register_and_admit, spec, who)
        if not created:
            return JSONResponse((await asyncio.to_thread(job_out, spec.request_id, who)).model_dump(mode="json"), status_code=200)
        generation.record_decisions(lake=stores.lake, spec=spec, admission=admission)
        out = await asyncio.to_thread(job_out, spec.request_id, who)
        if not admission.allowed:
            generation.record_outcome(lake=stores.lake, spec=spec, status=f"blocked_{admission.stage}",
                                      reason=admission.reason, seconds=admission.seconds)
            out.stage = admission.stage
            return JSONResponse(out.model_dump(mode="json"), status_code=403)
        worker.submit(spec, admission)
        return JSONResponse(out.model_dump(mode="json"), status_code=202)

    @api.get("/v1/generations/{job_id}", response_model=GenerationOut, responses=_errors(401, 403, 404))
    async def get_generation(job_id: str, who: auth.Principal = Depends(scoped("generations:read"))) -> GenerationOut:
        """A job's status, with the reason when blocked or failed, and the video when done."""
        return await asyncio.to_thread(job_out, job_id, who)

    @api.delete("/v1/generations/{job_id}", response_model=GenerationOut, responses=_errors(401, 403, 404, 409))
    async def cancel_generation(job_id: str, who: auth.Principal = Depends(scoped("generations:write"))) -> GenerationOut:
        """Cancel a queued job (409 once it is running or finished)."""
        def cancel() -> tuple[bool, str]:
            with stores.engine.begin() as conn:
                job = visible_job(conn, job_id, who)
                return job_store.cancel_if_queued(conn=conn, job_id=job_id), job.status
        cancelled, status = await asyncio.to_thread(cancel)
        if not cancelled:
            raise HTTPException(status_code=409, detail=f"job {job_id} is {status}; only queued jobs can be cancelled")
        return await asyncio.to_thread(job_out, job_id, who)

    def published(video_id: str) -> sa.Row:
        """The video if it is live and its consent holds now (checked at every serve, not only by the sweep)."""
        with stores.engine.connect() as conn:
            video = catalog.get_video(conn=conn, video_id=video_id)
            live = video is not None and video.published_at is not None and video.unpublished_at is None
            if live and video.cameo_ids:
                live = check_videos(conn=conn, videos=[video], max_cameos=settings.consent.max_cameos_per_video)[video.id].holds
        if not live:
            raise HTTPException(status_code=404, detail=f"no published video with id {video_id}")
        return video

    @api.get("/v1/feed", response_model=FeedOut, responses=_errors(401, 403, 422), dependencies=[Depends(scoped("feed:read"))])
    async def get_feed(limit: int = Query(20, ge=1, le=settings.consent.feed_page_max),
                       cursor: str | None = Query(None, description="next_cursor of the previous page"),
                       user_id: str | None = Query(None, min_length=1, max_length=64,
                                                   description="Whose feed: ranked for them (omit for the newest-first feed)."),
                       personalized: bool = Query(True, description="false: no personal signals (what they watched, "
                                                                    "whom they follow); hides still apply."),
                       steer: str | None = Query(None, max_length=200,
                                                 description="Steer the ranking in words, e.g. 'more cooking, less pranks'.")) -> Response:
        """A page of the feed. With ``user_id``: candidates (fresh, popular, followed creators, friends'
        cameos), ranked by the production ranker, then rules (consent and rights hold now, nothing the
        user hid, at most 2 in a row from one creator, a share of fresh videos); each item says why it
        is there, and the page is logged as impressions. Without: newest first. Either way consent is
        re-checked for every video at every serve."""
        if user_id is None:
            if steer is not None or not personalized:
                raise _field_errors([("user_id", "steer and personalized apply to a user's ranked feed; name user_id")])
            return _json(await asyncio.to_thread(lambda: chronological_feed(limit, cursor).model_dump_json()))

        def ranked() -> str:
            from kinora.feed import ranked_feed

            parts = feed_ranking()
            with stores.engine.connect() as conn:
                try:
                    page = ranked_feed(conn=conn, settings=settings, ranker=parts["ranker"], lists=parts["lists"],
                                       user_id=user_id, limit=limit, cursor=cursor, personalized=personalized, steer=steer)
                except ValueError as exc:
                    raise _field_errors([("cursor", str(exc))]) from None
                items = []
                for i, (row, item) in enumerate(page.items):
                    out = video_out(conn, row)
                    out.position, out.score, out.reasons = page.position + i, round(item.score, 5), item.reasons
                    items.append(out)
            if items:
                parts["impressions"].record(request_id=page.request_id, user_id=user_id,
                                            video_ids=[v.id for v in items], first_position=page.position,
                                            model_version=page.model_version, personalized=personalized,
                                            steered=bool(steer), candidates=page.candidates)
            return FeedOut(videos=items, next_cursor=page.next_cursor, withheld=page.withheld, request_id=page.request_id,
                           model_version=page.model_version, candidates=page.candidates).model_dump_json()
        t0 = time.perf_counter()
        out = await asyncio.get_running_loop().run_in_executor(feed_ranking()["executor"], ranked)
        observability.metrics().feed_latency.observe((time.perf_counter() - t0) * 1000)
        return _json(out)

    def chronological_feed(limit: int, cursor: str | None) -> FeedOut:
        after = None
        if cursor:
            try:
                ts, vid = cursor.split("|", 1)
                after = (datetime.fromisoformat(ts), vid)
            except ValueError:
                raise _field_errors([("cursor", "not a cursor this API returned")]) from None
        with stores.engine.connect() as conn:
            page = feed_page(conn=conn, settings=settings, limit=limit, cursor=after)
            items = [video_out(conn, v) for v in page.videos]
        nxt = f"{page.next_cursor[0].isoformat()}|{page.next_cursor[1]}" if page.next_cursor else None
        return FeedOut(videos=items, next_cursor=nxt, withheld=page.withheld)

    @api.get("/v1/videos/{video_id}.mp4", response_class=FileResponse, responses=_errors(401, 403, 404, 416),
             dependencies=[Depends(scoped("videos:read"))])
    async def get_video_file(video_id: str, request: Request) -> Response:
        """The MP4 (H.264 + AAC, C2PA inside); supports HTTP Range requests."""
        video = await asyncio.to_thread(published, video_id)
        return await asyncio.to_thread(media_response, stores.media, video.media_key, "video/mp4",
                                       request.headers.get("range"))

    @api.get("/v1/videos/{video_id}.jpg", response_class=FileResponse, responses=_errors(401, 403, 404),
             dependencies=[Depends(scoped("videos:read"))])
    async def get_thumbnail(video_id: str, request: Request) -> Response:
        """The first frame as JPEG (with the visible mark)."""
        video = await asyncio.to_thread(published, video_id)
        return await asyncio.to_thread(media_response, stores.media, video.thumbnail_key, "image/jpeg",
                                       request.headers.get("range"))

    @api.get("/v1/videos/{video_id}", response_model=VideoOut, responses=_errors(401, 403, 404),
             dependencies=[Depends(scoped("videos:read"))])
    async def get_video(video_id: str) -> VideoOut:
        """A published video's metadata and provenance summary."""
        def load() -> VideoOut:
            video = published(video_id)
            with stores.engine.connect() as conn:
                return video_out(conn, video)
        return await asyncio.to_thread(load)

    api.include_router(cameo_router(settings=settings, stores=stores, scoped=scoped))

    @api.post("/v1/events", status_code=202, response_model=IngestResult, responses=_errors(401, 403, 413, 422))
    async def post_events(body: EventsIn, who: auth.Principal = Depends(scoped("events:write"))) -> IngestResult:
        """Store a batch of engagement events: 202 only once the new ones are durable (repeats of an
        ingested event_id are counted, not stored). One bad event refuses the batch (422 naming it)."""
        from kinora.events import EventBatchError, ingest, validate

        if len(body.events) > settings.events.max_batch:
            raise HTTPException(status_code=413, detail=f"{len(body.events)} events; at most {settings.events.max_batch} per batch")
        try:
            events = validate(body.events)
        except EventBatchError as exc:
            raise _field_errors([(f"events[{exc.index}].{exc.field}", exc.message)]) from None
        result = await asyncio.to_thread(ingest, engine=stores.engine, lake=stores.lake, events=events)
        m = observability.metrics()
        m.events.inc(result.accepted, tags={"outcome": "accepted"})
        if result.duplicates:
            m.events.inc(result.duplicates, tags={"outcome": "duplicate"})
        return result

    @api.post("/v1/provenance/verify", response_model=VerifyReport, responses=_errors(413, 422),
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}}})
    async def verify_upload(request: Request) -> VerifyReport:
        """Check any video (raw bytes, no key needed): C2PA state and codes, the watermark's content id
        and confidence, the catalog record, and one verdict (intact, stripped_or_reencoded, tampered, unknown)."""
        from kinora.provenance.verify import verify_file

        data = await read_limited_body(request, settings.provenance.verify_max_bytes, "video")

        def go() -> VerifyReport:
            settings.scratch_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=settings.scratch_dir, prefix="verify-") as tmp:
                path = Path(tmp) / "upload.mp4"
                path.write_bytes(data)
                with stores.engine.connect() as conn:
                    return verify_file(path, conn=conn, trust_anchors_pem=trust_anchors)
        report = await asyncio.to_thread(go)
        if report.watermark.frames_read == 0 and report.c2pa.state == "absent":
            raise HTTPException(status_code=422, detail="the upload is not a video this verifier can read (no frames, no manifest)")
        await asyncio.to_thread(stores.lake.append, "verifications", [verification_row(report, source="api")])
        return report

    @api.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness and the database; no key needed."""
        try:
            await asyncio.to_thread(_ping, stores.engine)
        except Exception as exc:  # report, do not raise: this is the health endpoint
            return JSONResponse({"status": "unhealthy", "database": f"{type(exc).__name__}: {exc}"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "jobs_in_flight": len(worker.tasks)})

    return api


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
