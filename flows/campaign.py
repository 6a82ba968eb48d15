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
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from kinora import generation, observability
from kinora.campaign import load_campaign, plan_requests
from kinora.errors import one_line
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
def screen_rights(spec: GenerationSpec, stores: Stores, settings: Settings) -> RightsDecision:
    """Screen the prompt against the rights registry (as the requester: public figures need their cameo)."""
    with stores.engine.begin() as conn:
        return generation.rights_stage(conn=conn, spec=spec, settings=settings)


def _transient(task, task_run, state) -> bool:
    """Retry lost replicas and timeouts, not requests the model refused (ValueError)."""
    try:
        state.result()
    except ValueError:
        return False
    except Exception:
        return True
    return False


# Every generation call carries this tag: `prefect concurrency-limit create kinora-generator N` caps the calls
# all flow runs together make to the generator (campaign.max_workers bounds one process only). A run that dies
# mid-call keeps its slot until the slot's 60 s lease runs out (Prefect 3.9; tests/flows/test_prefect_server.py).
GENERATOR_TAG = "kinora-generator"


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2, retry_condition_fn=_transient, tags=[GENERATOR_TAG])
def generate_clip(spec: GenerationSpec, stores: Stores, settings: Settings):
    """Generate the clip on the Serve generator deployment (retried: it crosses the network)."""
    from serving.runtime import generate_clip as generate_on_serve

    return generate_on_serve(settings, generation.clip_request(spec, stores.media, settings, stores.engine))


@task(cache_policy=NO_CACHE)
def stamp_provenance(spec: GenerationSpec, clip, admission: Admission, stores: Stores, settings: Settings, material):
    """Watermark, encode and sign the clip into the media store."""
    from kinora.provenance.stamp import stamp_request

    return stamp_request(clip, spec=spec, admission=admission, media=stores.media, material=material, settings=settings)


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


class _Run:
    """Bookkeeping of one campaign run: the summary, per-request stage seconds, lake outcomes."""

    def __init__(self, specs: list[GenerationSpec], stores: Stores) -> None:
        self.summary = CampaignSummary(campaign=specs[0].campaign_id if specs else "", requested=len(specs))
        self.stores = stores
        self.seconds: dict[str, dict[str, float]] = defaultdict(dict)
        self.stage_seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        """Add the block's wall time to the campaign's seconds for ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] += time.perf_counter() - t0

    def refuse(self, spec: GenerationSpec, stage: str, reason: str, admission: Admission | None) -> None:
        if stage == "consent":
            self.summary.blocked_consent += 1
        else:
            self.summary.blocked_rights += 1
        self.summary.refusals.append(Refusal(request_id=spec.request_id, stage=stage, reason=reason, prompt=spec.prompt))
        if admission is not None:
            generation.record_decisions(lake=self.stores.lake, spec=spec, admission=admission)
        generation.record_outcome(lake=self.stores.lake, spec=spec, status=f"blocked_{stage}", reason=reason,
                                  seconds=self.seconds[spec.request_id])

    def fail(self, spec: GenerationSpec, reason: str) -> None:
        self.summary.failed += 1
        self.summary.failures.append(Refusal(request_id=spec.request_id, stage="failed", reason=reason, prompt=spec.prompt))
        mark_failed(spec, reason, self.stores)
        generation.record_outcome(lake=self.stores.lake, spec=spec, status="failed", reason=reason,
                                  seconds=self.seconds[spec.request_id])

    def published(self, spec, video, clip, stamped, admission: Admission) -> None:
        generation.record_published(lake=self.stores.lake, spec=spec, video=video, clip=clip, stamped=stamped,
                                    admission=admission, seconds=self.seconds[spec.request_id])
        if video.already_published:  # a concurrent run got there first
            self.summary.already_published += 1
        else:
            self.summary.published += 1
            self.summary.video_ids.append(video.video_id)

    def finish(self) -> CampaignSummary:
        self.summary.stage_seconds = {s: round(self.stage_seconds.get(s, 0.0), 3) for s in STAGES}
        return self.summary


@dataclass
class _Start:
    """What every campaign run begins with: settings, stores, signer, the plan and what is left of it."""

    settings: Settings
    stores: Stores
    material: object
    run: _Run
    todo: list[GenerationSpec]


def _begin(campaign_file: str, logger, label: str = "campaign") -> _Start:
    """Open the stores, plan the campaign, and leave out requests an earlier run already published
    (which is what makes a rerun, or a resume after a crash, publish nothing twice)."""
    from kinora.provenance.certs import load_signer_material

    settings = load_settings()
    observability.configure(settings)
    stores = Stores.open(settings)
    material = load_signer_material(settings.provenance, settings.cert_dir)
    specs = plan_campaign(campaign_file, stores, settings)
    run = _Run(specs, stores)
    done = find_published(specs, stores)
    run.summary.already_published = len(done)
    todo = [s for s in specs if s.request_id not in done]
    logger.info("%s %s: %d requests, %d already published", label, run.summary.campaign, len(specs), len(done))
    return _Start(settings=settings, stores=stores, material=material, run=run, todo=todo)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _admit(chunk: list[GenerationSpec], run: _Run, stores: Stores, settings: Settings) -> list[tuple[GenerationSpec, Admission]]:
    """Consent, then rights, for each request; refusals are recorded and dropped."""
    admitted = []
    for spec in chunk:
        t0 = time.perf_counter()
        with run.stage("consent"):
            consent = check_consent(spec, stores, settings)
        run.seconds[spec.request_id]["consent"] = time.perf_counter() - t0
        if not consent.allowed:
            run.refuse(spec, "consent", consent.reason,
                       Admission(allowed=False, stage="consent", reason=consent.reason, consent=consent))
            continue
        t0 = time.perf_counter()
        with run.stage("rights"):
            rights = screen_rights(spec, stores, settings)
        run.seconds[spec.request_id]["rights"] = time.perf_counter() - t0
        admission = Admission(allowed=rights.allowed, stage="none" if rights.allowed else "rights",
                              reason=rights.reason, consent=consent, rights=rights)
        if not rights.allowed:
            run.refuse(spec, "rights", rights.reason, admission)
            continue
        generation.record_decisions(lake=stores.lake, spec=spec, admission=admission)
        admitted.append((spec, admission))
    return admitted


def _generate(admitted: list, run: _Run, stores: Stores, settings: Settings) -> list:
    """All clips of the chunk at once, so Serve can batch them; a failure costs one request."""
    with run.stage("generate"):
        futures = generate_clip.map([spec for spec, _ in admitted], stores=unmapped(stores), settings=unmapped(settings))
        clips = []
        for (spec, _), fut in zip(admitted, futures):
            try:
                clips.append(fut.result())
            except Exception as exc:  # one bad request must not sink the campaign
                clips.append(None)
                run.fail(spec, f"generation: {one_line(exc)}")
    run.summary.generated += sum(c is not None for c in clips)
    return clips


def _stamp(admitted: list, clips: list, run: _Run, stores: Stores, settings: Settings, material) -> list:
    with run.stage("stamp"):
        futures = [stamp_provenance.submit(spec, clip, admission, stores, settings, material) if clip is not None else None
                   for (spec, admission), clip in zip(admitted, clips)]
        stamped = []
        for (spec, _), fut in zip(admitted, futures):
            try:
                stamped.append(fut.result() if fut is not None else None)
            except Exception as exc:
                stamped.append(None)
                run.fail(spec, f"provenance: {one_line(exc)}")
    return stamped


def _publish(admitted: list, clips: list, stamped: list, run: _Run, stores: Stores, settings: Settings) -> None:
    with run.stage("publish"):
        for (spec, admission), clip, stamp in zip(admitted, clips, stamped):
            if stamp is None:
                continue
            t0 = time.perf_counter()
            video = publish_video(spec, stamp, stores, settings)
            run.seconds[spec.request_id]["publish"] = time.perf_counter() - t0
            if video is None:
                run.refuse(spec, "consent", "consent changed before publish", None)
            else:
                run.published(spec, video, clip, stamp, admission)


@flow(name="campaign", task_runner=ThreadPoolTaskRunner(max_workers=16))  # generation is bounded by campaign.max_workers
def campaign(campaign_file: str) -> CampaignSummary:
    """Make every allowed video of a campaign file and publish it, stamped; record each refusal with its reason."""
    logger = get_run_logger()
    start = _begin(campaign_file, logger)
    settings, stores, material, run, todo = start.settings, start.stores, start.material, start.run, start.todo
    if todo:
        start_generator(settings)

    for chunk in _chunks(todo, settings.campaign.chunk_size):
        admitted = _admit(chunk, run, stores, settings)
        clips = _generate(admitted, run, stores, settings)
        stamped = _stamp(admitted, clips, run, stores, settings, material)
        _publish(admitted, clips, stamped, run, stores, settings)

    summary = run.finish()
    logger.info("campaign %s: published %d, blocked %d by consent and %d by rights, %d failed",
                summary.campaign, summary.published, summary.blocked_consent, summary.blocked_rights, summary.failed)
    return summary
