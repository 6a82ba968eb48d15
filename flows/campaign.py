"""The campaign flow: ops hand it a campaign file, it makes and publishes the videos.

    plan -> check_consent -> screen_rights -> generate_clip (Ray Serve) -> stamp_provenance
         -> publish_video (consent re-checked) -> summary

Every task calls one function of ``kinora`` and returns its result. Requests already
published by an earlier run of the same campaign are skipped, so a rerun (or a resume after
a crash) publishes nothing twice. Requests move through the stages in chunks, so the stage
timings in the summary are wall-clock seconds of the campaign spent in each stage.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from kinora import generation
from kinora.campaign import load_campaign, plan_requests
from kinora.generation import Admission, GenerationSpec
from kinora.settings import Settings, load_settings
from kinora.stores.bundle import Stores
from kinora.trust.consent import ConsentDecision
from kinora.trust.rights import RightsDecision

STAGES = ("consent", "rights", "generate", "stamp", "publish")


class Refusal(BaseModel):
    request_id: str
    stage: str
    reason: str
    prompt: str


class CampaignSummary(BaseModel):
    """What a campaign run did; printed by the CLI and returned by the flow."""

    campaign: str
    requested: int
    already_published: int = 0
    blocked_consent: int = 0
    blocked_rights: int = 0
    failed: int = 0
    generated: int = 0
    published: int = 0
    stage_seconds: dict[str, float] = {}
    refusals: list[Refusal] = []
    failures: list[Refusal] = []
    video_ids: list[str] = []


@task(cache_policy=NO_CACHE)
def plan_campaign(campaign_file: str, stores: Stores, settings: Settings) -> list[GenerationSpec]:
    """Read the campaign file and expand it into requests."""
    path = Path(campaign_file)
    campaign = load_campaign(path)
    with stores.engine.begin() as conn:
        specs = plan_requests(campaign=campaign, path=path, conn=conn, settings=settings.generation)
        for spec in specs:
            generation.register(conn=conn, spec=spec)
    return specs


@task(cache_policy=NO_CACHE)
def find_published(specs: list[GenerationSpec], stores: Stores) -> set[str]:
    """Return the request ids that already have a published video."""
    with stores.engine.connect() as conn:
        return {s.request_id for s in specs if generation.already_published(conn=conn, request_id=s.request_id)}


@task(cache_policy=NO_CACHE)
def check_consent(spec: GenerationSpec, stores: Stores, settings: Settings) -> ConsentDecision:
    """Check that every cameo in the request permits the requester."""
    with stores.engine.begin() as conn:
        return generation.consent_stage(conn=conn, spec=spec, settings=settings)


@task(cache_policy=NO_CACHE)
def screen_rights(spec: GenerationSpec, stores: Stores) -> RightsDecision:
    """Screen the prompt against the rights registry."""
    with stores.engine.begin() as conn:
        return generation.rights_stage(conn=conn, spec=spec)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def generate_clip(spec: GenerationSpec, settings: Settings):
    """Generate the clip on the Serve generator deployment (retried: it crosses the network)."""
    from serving.runtime import generator_handle

    return generator_handle(settings).generate.remote(generation.clip_request(spec)).result()


@task(cache_policy=NO_CACHE)
def stamp_provenance(spec: GenerationSpec, clip, admission: Admission, stores: Stores, settings: Settings, material):
    """Watermark, encode and sign the clip into the media store."""
    from kinora.provenance.stamp import stamp_clip

    return stamp_clip(
        clip, request_id=spec.request_id, creator_handle=spec.requester_handle, title=spec.prompt[:80],
        consent_hash=admission.consent.digest(), rights_hash=admission.rights.digest(), media=stores.media,
        material=material, settings=settings,
    )


@task(cache_policy=NO_CACHE)
def publish_video(spec: GenerationSpec, stamped, stores: Stores, settings: Settings):
    """Re-check consent and add the video to the catalog (once)."""
    with stores.engine.begin() as conn:
        return generation.publish(conn=conn, spec=spec, stamped=stamped, settings=settings)


@task(cache_policy=NO_CACHE)
def mark_failed(spec: GenerationSpec, reason: str, stores: Stores) -> None:
    """Mark the job failed with its reason."""
    with stores.engine.begin() as conn:
        generation.fail(conn=conn, spec=spec, reason=reason)


@task(cache_policy=NO_CACHE)
def start_generator(settings: Settings) -> None:
    """Make sure the Serve application is running (starts a local Ray when no cluster is named)."""
    from serving.runtime import start_serve

    start_serve(settings)


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@flow(name="campaign", task_runner=ThreadPoolTaskRunner(max_workers=4))
def campaign(campaign_file: str) -> CampaignSummary:
    """Make every allowed video of a campaign file and publish it, stamped; record each refusal with its reason."""
    logger = get_run_logger()
    settings = load_settings()
    stores = Stores.open(settings)
    from kinora.provenance.certs import load_signer_material

    material = load_signer_material(settings.provenance, settings.cert_dir)
    specs = plan_campaign(campaign_file, stores, settings)
    summary = CampaignSummary(campaign=specs[0].campaign_id if specs else "", requested=len(specs))
    done = find_published(specs, stores)
    summary.already_published = len(done)
    todo = [s for s in specs if s.request_id not in done]
    logger.info("campaign %s: %d requests, %d already published", summary.campaign, len(specs), len(done))
    if todo:
        start_generator(settings)
    clock = _Clock()
    per_request: dict[str, dict[str, float]] = defaultdict(dict)

    for chunk in _chunks(todo, settings.campaign.chunk_size):
        admitted: list[tuple[GenerationSpec, Admission]] = []
        for spec in chunk:
            t0 = time.perf_counter()
            with clock.stage("consent"):
                consent = check_consent(spec, stores, settings)
            per_request[spec.request_id]["consent"] = time.perf_counter() - t0
            if not consent.allowed:
                _refuse(summary, spec, "consent", consent.reason, stores, per_request, Admission(
                    allowed=False, stage="consent", reason=consent.reason, consent=consent))
                continue
            t0 = time.perf_counter()
            with clock.stage("rights"):
                rights = screen_rights(spec, stores)
            per_request[spec.request_id]["rights"] = time.perf_counter() - t0
            admission = Admission(allowed=rights.allowed, stage="none" if rights.allowed else "rights",
                                  reason=rights.reason, consent=consent, rights=rights)
            if not rights.allowed:
                _refuse(summary, spec, "rights", rights.reason, stores, per_request, admission)
                continue
            generation.record_decisions(lake=stores.lake, spec=spec, admission=admission)
            admitted.append((spec, admission))

        with clock.stage("generate"):
            futures = generate_clip.map([s for s, _ in admitted], settings=unmapped(settings))
            clips = []
            for (spec, _), fut in zip(admitted, futures):
                try:
                    clips.append(fut.result())
                except Exception as exc:  # one bad request must not sink the campaign
                    clips.append(None)
                    _fail(summary, spec, f"generation: {type(exc).__name__}: {exc}", stores, per_request)
        summary.generated += sum(c is not None for c in clips)

        with clock.stage("stamp"):
            stamp_futures = [
                stamp_provenance.submit(spec, clip, admission, stores, settings, material) if clip is not None else None
                for (spec, admission), clip in zip(admitted, clips)
            ]
            stamped = []
            for (spec, _), fut in zip(admitted, stamp_futures):
                try:
                    stamped.append(fut.result() if fut is not None else None)
                except Exception as exc:
                    stamped.append(None)
                    _fail(summary, spec, f"provenance: {type(exc).__name__}: {exc}", stores, per_request)

        with clock.stage("publish"):
            for (spec, admission), clip, stamp in zip(admitted, clips, stamped):
                if stamp is None:
                    continue
                t0 = time.perf_counter()
                video = publish_video(spec, stamp, stores, settings)
                per_request[spec.request_id]["publish"] = time.perf_counter() - t0
                if video is None:
                    _refuse(summary, spec, "consent", "consent changed before publish", stores, per_request, None)
                    continue
                per_request[spec.request_id]["generate"] = clip.timings.get("pipeline", 0.0)
                generation.record_outcome(
                    lake=stores.lake, spec=spec, status="published", reason=None, seconds=per_request[spec.request_id],
                    video=video, model_family=clip.model_family, model_version=clip.model_version,
                    c2pa_state=stamp.c2pa_state, cameo_count=len(admission.consent.grants),
                )
                if not video.already_published:
                    summary.published += 1
                    summary.video_ids.append(video.video_id)
                else:
                    summary.already_published += 1

    summary.stage_seconds = {s: round(clock.seconds.get(s, 0.0), 3) for s in STAGES}
    logger.info("campaign %s: published %d, blocked %d by consent and %d by rights, %d failed",
                summary.campaign, summary.published, summary.blocked_consent, summary.blocked_rights, summary.failed)
    return summary


def _refuse(summary: CampaignSummary, spec: GenerationSpec, stage: str, reason: str, stores: Stores,
            per_request: dict, admission: Admission | None) -> None:
    if stage == "consent":
        summary.blocked_consent += 1
    else:
        summary.blocked_rights += 1
    summary.refusals.append(Refusal(request_id=spec.request_id, stage=stage, reason=reason, prompt=spec.prompt))
    if admission is not None:
        generation.record_decisions(lake=stores.lake, spec=spec, admission=admission)
    generation.record_outcome(lake=stores.lake, spec=spec, status=f"blocked_{stage}", reason=reason,
                              seconds=per_request[spec.request_id])


def _fail(summary: CampaignSummary, spec: GenerationSpec, reason: str, stores: Stores, per_request: dict) -> None:
    summary.failed += 1
    summary.failures.append(Refusal(request_id=spec.request_id, stage="failed", reason=reason, prompt=spec.prompt))
    mark_failed(spec, reason, stores)
    generation.record_outcome(lake=stores.lake, spec=spec, status="failed", reason=reason, seconds=per_request[spec.request_id])
