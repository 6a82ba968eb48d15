"""The life of one generation request, shared by the campaign flow and the HTTP API.

    register -> admit (consent, rights) -> [generate on Serve] -> stamp -> publish

Each step is a plain function taking a connection and typed values, so it is tested without
Prefect or Ray; the flow's tasks and the API's handlers only call these.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from kinora.observability import metrics, trace
from kinora.settings import Settings
from kinora.stores import catalog, utcnow
from kinora.stores import jobs as job_store
from kinora.stores.lake import Lake
from kinora.trust.consent import ConsentDecision, check_consent, record_use
from kinora.trust.ledger import LedgerKey
from kinora.trust.rights import RightsDecision, screen_items, with_sources

logger = logging.getLogger(__name__)


class GenerationSpec(BaseModel):
    """One video to make: the payload that travels from a campaign or the API to the generator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(description="Job id; derived from the campaign for campaign requests.")
    requester_id: str = Field(description="User on whose behalf the video is made.")
    requester_handle: str = Field(description="Shown in the visible watermark.")
    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    cameos: list[str] = Field(default_factory=list, description="Cameo handles used, without '@'.")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    fps: int = Field(gt=0)
    seed: int = Field(ge=0, lt=2**63)
    campaign_id: str | None = None
    source: Literal["campaign", "api"] = "campaign"
    remix_of: str | None = Field(None, description="Published video this one remixes.")
    remix_media_key: str | None = Field(None, description="Media key of the parent's MP4 (resolved when the request is made).")

    def params(self) -> dict:
        return self.model_dump(exclude={"request_id", "requester_id", "prompt", "campaign_id"})


class Admission(BaseModel):
    """The outcome of the checks before generation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    stage: Literal["consent", "rights", "none"]
    reason: str
    consent: ConsentDecision
    rights: RightsDecision | None = None
    seconds: dict[str, float] = Field(default_factory=dict, description="Wall time of each check.")


@dataclass(frozen=True)
class PublishedVideo:
    video_id: str
    request_id: str
    media_key: str
    thumbnail_key: str
    sha256: str
    c2pa_state: str | None
    published_at: datetime | None  # None: a draft awaiting a cameo owner's approval
    already_published: bool = False


def limit_problems(
    settings: "GenerationSettings", *, prompt: str, resolution: str, duration_s: float, fps: int  # noqa: F821
) -> list[tuple[str, str]]:
    """Return (field, problem) for each platform limit a request breaks; campaigns and the API share these."""
    problems = []
    if len(prompt) > settings.max_prompt_chars:
        problems.append(("prompt", f"{len(prompt)} characters; at most {settings.max_prompt_chars}"))
    if resolution not in settings.resolutions:
        problems.append(("resolution", f"{resolution} is not allowed; allowed: {', '.join(settings.resolutions)}"))
    if not settings.min_duration_s <= duration_s <= settings.max_duration_s:
        problems.append(("duration_s", f"{duration_s} s is outside {settings.min_duration_s}-{settings.max_duration_s} s"))
    if fps != settings.fps:
        problems.append(("fps", f"{fps} fps is not offered; this platform generates at {settings.fps} fps"))
    return problems


class UnstampedError(ValueError):
    """A video reached publishing without all of its provenance stamps."""


class RemixError(LookupError):
    """The remix source is not a published video."""


def resolve_remix(*, conn: sa.Connection, video_id: str) -> tuple[str, list[str]]:
    """Return the parent's media key and the handles of the cameos it shows.

    A remix inherits its parent's cameos: their consent is checked for the remixer as if the
    remixer had named them.
    """
    from kinora.stores import cameos as cameo_store

    parent = catalog.get_video(conn=conn, video_id=video_id)
    if parent is None or parent.published_at is None or parent.unpublished_at is not None:
        raise RemixError(f"no published video {video_id} to remix")
    handles = []
    for cameo_id in parent.cameo_ids:
        cameo = cameo_store.get_cameo(conn=conn, cameo_id=cameo_id)
        handles.append(cameo.handle if cameo else cameo_id)
    return parent.media_key, handles


def register(*, conn: sa.Connection, spec: GenerationSpec, api_key_id: str | None = None) -> bool:
    """Store the job as queued unless it exists; return True when new (``api_key_id``: the API
    key that submitted it, for quotas and leases)."""
    created = job_store.create_job(
        conn=conn, job_id=spec.request_id, requester_id=spec.requester_id, prompt=spec.prompt,
        params=spec.params(), campaign_id=spec.campaign_id, api_key_id=api_key_id,
    )
    trace("generation.submitted", request_id=spec.request_id, source=spec.source, campaign_id=spec.campaign_id,
          requester_id=spec.requester_id, new=created, duration_s=spec.duration_s, resolution=f"{spec.width}x{spec.height}")
    return created


def consent_stage(*, conn: sa.Connection, spec: GenerationSpec, settings: Settings) -> ConsentDecision:
    """Check consent and record the decision; block the job when refused."""
    decision = check_consent(
        conn=conn, requester_id=spec.requester_id, cameo_handles=spec.cameos,
        max_cameos=settings.consent.max_cameos_per_video, prompt=spec.prompt,
    )
    _record(conn=conn, spec=spec, stage="consent", outcome="allow" if decision.allowed else "block", reason=decision.reason,
            detail={"grants": [g.as_dict() for g in decision.grants]})
    if not decision.allowed:
        job_store.set_status(conn=conn, job_id=spec.request_id, status="blocked", reason=f"consent: {decision.reason}")
    return decision


def rights_stage(*, conn: sa.Connection, spec: GenerationSpec, settings: Settings | None = None) -> RightsDecision:
    """Screen the prompt and record the decision; block the job when refused."""
    settings = settings or Settings()
    decision = screen_remix(conn=conn, prompt=spec.prompt, remix_of=spec.remix_of, requester_id=spec.requester_id,
                            settings=settings)
    _record(conn=conn, spec=spec, stage="rights", outcome=decision.decision, reason=decision.reason,
            detail={"matches": [m.model_dump() for m in decision.matches]})
    if not decision.allowed:
        job_store.set_status(conn=conn, job_id=spec.request_id, status="blocked", reason=f"rights: {decision.reason}")
    return decision


def screen_remix(*, conn: sa.Connection, prompt: str, remix_of: str | None, requester_id: str,
                 settings: Settings) -> RightsDecision:
    """Screen a prompt; for a remix, every prompt up its remix chain too, for the same requester
    (the source's rights carry over to the remix)."""
    chain = catalog.sources_of(remix_of, catalog.lineage(conn=conn, video_ids=[remix_of])) if remix_of else []
    decisions = screen_items(conn=conn, items=[(prompt, requester_id)] + [(v.prompt, requester_id) for v in chain],
                             settings=settings.rights, max_cameos=settings.consent.max_cameos_per_video)
    return with_sources(decisions[0], [(v.id, d) for v, d in zip(chain, decisions[1:])], prompt)


def admit(*, conn: sa.Connection, spec: GenerationSpec, settings: Settings) -> Admission:
    """Run both checks (consent first: it is cheaper and more sensitive)."""
    t0 = time.perf_counter()
    consent = consent_stage(conn=conn, spec=spec, settings=settings)
    seconds = {"consent": time.perf_counter() - t0}
    if not consent.allowed:
        return Admission(allowed=False, stage="consent", reason=consent.reason, consent=consent, seconds=seconds)
    t0 = time.perf_counter()
    rights = rights_stage(conn=conn, spec=spec, settings=settings)
    seconds["rights"] = time.perf_counter() - t0
    if not rights.allowed:
        return Admission(allowed=False, stage="rights", reason=rights.reason, consent=consent, rights=rights, seconds=seconds)
    return Admission(allowed=True, stage="none", reason="admitted", consent=consent, rights=rights, seconds=seconds)


def _record(*, conn: sa.Connection, spec: GenerationSpec, stage: str, outcome: str, reason: str, detail: dict) -> None:
    job_store.record_decision(conn=conn, job_id=spec.request_id, stage=stage, outcome=outcome, reason=reason, detail=detail)


def already_published(*, conn: sa.Connection, request_id: str) -> sa.Row | None:
    return catalog.get_video_by_job(conn=conn, job_id=request_id)


def publish(
    *,
    conn: sa.Connection,
    spec: GenerationSpec,
    stamped: "StampedVideo",  # noqa: F821 - kinora.provenance.stamp, imported lazily (heavy deps)
    settings: Settings,
) -> PublishedVideo | None:
    """Re-check consent, then add the video to the catalog exactly once.

    A cameo revoked while the clip was generated blocks publishing here: the job is marked
    blocked and None is returned (not raised, so the caller's transaction keeps the record). A second publish of
    the same request (a rerun, a retry) returns the existing video and changes nothing. When a cameo's owner
    approves each video, the video is stored as a draft (``published_at`` empty) until every such owner approves.
    """
    existing = catalog.get_video_by_job(conn=conn, job_id=spec.request_id)
    if existing is not None:
        return _published(existing, already=True)
    missing = stamped.missing_stamps()
    if missing:
        raise UnstampedError(f"refusing to publish {stamped.video_id} without its {', '.join(missing)}")
    recheck = check_consent(
        conn=conn, requester_id=spec.requester_id, cameo_handles=spec.cameos,
        max_cameos=settings.consent.max_cameos_per_video, prompt=spec.prompt,
    )
    if not recheck.allowed:
        _record(conn=conn, spec=spec, stage="publish", outcome="block", reason=f"consent changed: {recheck.reason}", detail={})
        job_store.set_status(conn=conn, job_id=spec.request_id, status="blocked", reason=f"consent changed before publish: {recheck.reason}")
        return None
    now = utcnow()
    draft = bool(recheck.needs_approval(spec.requester_id))
    inserted = catalog.insert_video(
        conn=conn,
        values=dict(
            id=stamped.video_id, job_id=spec.request_id, creator_id=spec.requester_id, campaign_id=spec.campaign_id,
            prompt=spec.prompt, duration_ms=round(spec.duration_s * 1000), width=spec.width, height=spec.height,
            fps=spec.fps, model_family=stamped.model_family, model_version=stamped.model_version, seed=spec.seed,
            media_key=stamped.media_key, thumbnail_key=stamped.thumbnail_key, sha256=stamped.sha256,
            provenance=stamped.provenance_summary(), cameo_ids=[g.cameo_id for g in recheck.grants],
            published_at=None if draft else now, unpublished_at=None, created_at=now, remix_of=spec.remix_of,
            content_id=stamped.content_id,
        ),
    )
    if not inserted:  # a concurrent publisher won the race: report its row
        return _published(catalog.get_video_by_job(conn=conn, job_id=spec.request_id), already=True)
    pending = record_use(conn=conn, key=LedgerKey.for_settings(settings), decision=recheck,
                         requester_id=spec.requester_id, video_id=stamped.video_id, job_id=spec.request_id)
    reason = ("published" if not pending else
              "draft: awaiting approval by the owner of " + ", ".join(f"@{h}" for h in pending))
    _record(conn=conn, spec=spec, stage="publish", outcome="allow" if not pending else "pending", reason=reason,
            detail={"video_id": stamped.video_id})
    job_store.set_status(conn=conn, job_id=spec.request_id, status="succeeded", video_id=stamped.video_id,
                         reason=None if not pending else reason)
    return _published(catalog.get_video(conn=conn, video_id=stamped.video_id), already=False)


def _published(row: sa.Row, *, already: bool) -> PublishedVideo:
    return PublishedVideo(
        video_id=row.id, request_id=row.job_id, media_key=row.media_key, thumbnail_key=row.thumbnail_key,
        sha256=row.sha256, c2pa_state=(row.provenance or {}).get("c2pa_state"), published_at=row.published_at,
        already_published=already,
    )


def fail(*, conn: sa.Connection, spec: GenerationSpec, reason: str) -> None:
    job_store.set_status(conn=conn, job_id=spec.request_id, status="failed", reason=reason)


def record_outcome(
    *, lake: Lake, spec: GenerationSpec, status: str, reason: str | None, seconds: dict[str, float],
    video: PublishedVideo | None = None, model_family: str | None = None, model_version: str | None = None,
    c2pa_state: str | None = None, cameo_count: int = 0, device: str | None = None,
) -> None:
    """Write the request's outcome (and the video, when published) to the lake."""
    now = utcnow()
    trace("generation.published" if status == "published" else "generation.failed" if status == "failed" else "generation.blocked",
          request_id=spec.request_id, source=spec.source, status=status, reason=reason,
          video_id=video.video_id if video else None, device=device, model_version=model_version,
          **{f"{k}_s": round(v, 4) for k, v in seconds.items() if v is not None})
    metrics().generations.inc(tags={"outcome": status, "source": spec.source})
    lake.append("generations", [dict(
        request_id=spec.request_id, campaign_id=spec.campaign_id, requester_id=spec.requester_id, source=spec.source,
        status=status, reason=reason, video_id=video.video_id if video else None, model_family=model_family,
        model_version=model_version, seed=spec.seed, duration_s=spec.duration_s, device=device,
        consent_s=seconds.get("consent"), rights_s=seconds.get("rights"), queue_s=seconds.get("queue"),
        generate_s=seconds.get("generate"), stamp_s=seconds.get("stamp"), mux_s=seconds.get("mux"),
        publish_s=seconds.get("publish"), ts=now,
    )])
    if video is not None and not video.already_published and video.published_at is not None:
        lake.append("videos", [dict(
            video_id=video.video_id, request_id=spec.request_id, creator_id=spec.requester_id, campaign_id=spec.campaign_id,
            prompt=spec.prompt, duration_ms=round(spec.duration_s * 1000), width=spec.width, height=spec.height,
            model_family=model_family or "", model_version=model_version or "", c2pa_state=c2pa_state,
            cameo_count=cameo_count, published_at=video.published_at,
        )])


def record_published(
    *, lake: Lake, spec: GenerationSpec, video: PublishedVideo, clip, stamped, admission: Admission, seconds: dict[str, float]
) -> None:
    """Record a published request: its outcome with stage seconds, and the video row.

    ``seconds`` holds what the caller measured (consent, rights, publish); the clip and the stamp
    add their own: queue (waiting for the generator), generate (the pipeline), stamp and mux.
    """
    seconds = {**seconds, "generate": clip.timings.get("pipeline"), "queue": clip.timings.get("queue"),
               "stamp": stamped.seconds, "mux": stamped.timings.get("mux")}
    record_outcome(
        lake=lake, spec=spec, status="published", reason=None, seconds=seconds, video=video,
        model_family=clip.model_family, model_version=clip.model_version, c2pa_state=stamped.c2pa_state,
        cameo_count=len(admission.consent.grants), device=clip.device,
    )


def note_call_time(clip, wall_s: float):
    """Record the caller's wall time of the generator call; what the model's generate() did not take was
    queueing and transport (older clips without ``generate_call``: what the pipeline did not take)."""
    busy = clip.timings.get("generate_call", clip.timings.get("pipeline", 0.0) + clip.timings.get("postprocess", 0.0))
    clip.timings["call"] = wall_s
    clip.timings["queue"] = max(0.0, wall_s - busy)
    return clip


def record_decisions(*, lake: Lake, spec: GenerationSpec, admission: Admission) -> None:
    """Mirror the admission decisions into the lake for analytics."""
    now = utcnow()
    trace("generation.admitted" if admission.allowed else "generation.refused", request_id=spec.request_id,
          source=spec.source, stage=None if admission.allowed else admission.stage,
          consent=admission.consent.reason, rights=admission.rights.decision if admission.rights else None)
    rows = [dict(request_id=spec.request_id, campaign_id=spec.campaign_id, stage="consent",
                 outcome="allow" if admission.consent.allowed else "block", reason=admission.consent.reason, ts=now)]
    if admission.rights is not None:
        first = admission.rights.matches[0] if admission.rights.matches else None
        rows.append(dict(request_id=spec.request_id, campaign_id=spec.campaign_id, stage="rights",
                         outcome=admission.rights.decision, reason=admission.rights.reason, ts=now,
                         holder=first.holder if first else None, work=first.work if first else None))
    lake.append("decisions", rows)


def clip_request(spec: GenerationSpec, media: "MediaStore | None" = None,  # noqa: F821
                 settings: Settings | None = None, engine: sa.Engine | None = None) -> "ClipRequest":  # noqa: F821
    """The model-facing part of a spec (no ids, no people).

    A remix is conditioned on its parent's first frame (image-to-video from the parent's opening
    shot, under the new prompt); ``media`` is needed to read it. Otherwise a request naming cameos
    is conditioned on the first named cameo's reference image (decrypted here, after consent was
    checked; needs ``settings`` and ``engine`` too). The models take one conditioning image.
    """
    from models.generation.types import ClipRequest

    reference = None
    if spec.remix_media_key:
        if media is None:
            raise ValueError("a remix needs the media store to read its parent")
        with media.local_file(spec.remix_media_key) as parent:
            reference = _first_frame(parent, spec.width, spec.height)
    elif spec.cameos and media is not None and settings is not None and engine is not None:
        reference = cameo_reference(spec=spec, media=media, settings=settings, engine=engine)
    return ClipRequest(
        prompt=spec.prompt, negative_prompt=spec.negative_prompt, width=spec.width, height=spec.height,
        duration_s=spec.duration_s, fps=spec.fps, seed=spec.seed, reference_image=reference,
    )


def cameo_reference(*, spec: GenerationSpec, media: "MediaStore", settings: Settings,  # noqa: F821
                    engine: sa.Engine) -> "np.ndarray | None":  # noqa: F821
    """The first named cameo's reference image, RGB uint8 at the clip's size (centre-cropped to its
    aspect); None when no named cameo has one (erased on revocation, or never stored)."""
    import io

    import numpy as np
    from PIL import Image, ImageOps

    from kinora.stores import cameos as cameo_store
    from kinora.trust.cameos import reference_media

    with engine.connect() as conn:
        for handle in spec.cameos:
            cameo = cameo_store.get_cameo_by_handle(conn=conn, handle=handle.lstrip("@"))
            data = reference_media(settings=settings, media=media, cameo=cameo, kind="reference_image") if cameo else None
            if data:
                image = Image.open(io.BytesIO(data)).convert("RGB")
                fitted = ImageOps.fit(image, (spec.width, spec.height), Image.Resampling.BICUBIC)
                return np.asarray(fitted, dtype=np.uint8)
    return None


def _first_frame(path, width: int, height: int):
    import numpy as np
    from PIL import Image

    from models.media import read_frames

    frame = read_frames(path)[0]
    if frame.shape[:2] != (height, width):
        frame = np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))
    return frame
