"""Large offline campaigns on Ray Data: the campaign flow's checks and publishing, generation on an actor pool.

    plan -> check_consent -> screen_rights            (the campaign flow's own tasks)
         -> ray.data.from_items(specs).map_batches(ClipGenerator, ActorPoolStrategy(size=N), num_gpus=G)
         -> stamp_provenance -> publish_video (consent re-checked, once) -> summary with throughput

The campaign flow sends each clip through the Serve generator (the same deployment the HTTP API
uses). This flow leaves Serve alone: it starts its own pool of generator actors (each loads the
model once, as a Serve replica does; GPUs reserved per actor from settings), streams the admitted
requests through it in batches, and stamps and publishes each block of clips on the driver as it
arrives. The checks, stamping, publishing and bookkeeping are the campaign flow's, so a request is
admitted, refused, recorded and published exactly as there: consent is re-checked at publish and a
rerun publishes nothing twice.

Stage seconds are the driver's wall time in each stage; ``generate`` is the time it waited for the
next block of clips (generation overlaps stamping and publishing). ``videos_per_s`` is published
videos per second of the whole run; ``generated_per_s`` clips per second of the Ray Data pipeline.
"""

from __future__ import annotations

import time
from collections import Counter

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.campaign import CampaignSummary, _admit, _begin, _chunks, _publish, _stamp
from kinora.batch import generate_blocks, load_clip, num_gpus_per_actor
from kinora.errors import one_line


class BatchCampaignSummary(CampaignSummary):
    """A campaign summary plus how the Ray Data run went."""

    engine: str = "ray-data"
    total_seconds: float = 0.0
    generation_seconds: float = 0.0
    videos_per_s: float = 0.0
    generated_per_s: float = 0.0
    actor_busy_seconds: float = 0.0
    actors: int = 0
    batch_size: int = 0
    num_gpus_per_actor: float = 0.0
    nodes: dict[str, int] = {}
    devices: list[str] = []


@flow(name="campaign-batch", task_runner=ThreadPoolTaskRunner(max_workers=16))
def campaign_batch(campaign_file: str) -> BatchCampaignSummary:
    """Make every allowed video of a campaign file on a Ray Data actor pool and publish it, stamped."""
    from serving.runtime import ensure_ray

    log = get_run_logger()
    t_start = time.perf_counter()
    start = _begin(campaign_file, log, label="batch campaign")
    settings, stores, material, run, todo = start.settings, start.stores, start.material, start.run, start.todo

    admitted = []
    for chunk in _chunks(todo, settings.campaign.chunk_size):
        admitted.extend(_admit(chunk, run, stores, settings))

    nodes: Counter[str] = Counter()
    devices: set[str] = set()
    busy_s = generation_s = 0.0
    if admitted:
        ensure_ray(settings)
        by_id = {spec.request_id: (spec, admission) for spec, admission in admitted}
        t_gen = time.perf_counter()
        blocks = generate_blocks([spec for spec, _ in admitted], settings)
        while True:
            with run.stage("generate"):
                try:
                    rows = next(blocks, None)
                except Exception as exc:  # the pipeline itself failed: what it did not return fails, with the reason
                    log.error("batch campaign %s: Ray Data pipeline failed: %s", run.summary.campaign, one_line(exc))
                    for spec, _ in by_id.values():
                        run.fail(spec, f"generation: {one_line(exc)}")
                    break
            if rows is None:
                break
            pairs, clips = [], []
            for row in rows:
                spec, admission = by_id.pop(row["request_id"])
                nodes[row["node_id"]] += 1
                busy_s += row["busy_s"]
                if row["error"]:
                    run.fail(spec, f"generation: {row['error']}")
                    continue
                clip = load_clip(row)
                devices.add(row["device"])
                pairs.append((spec, admission))
                clips.append(clip)
            run.summary.generated += len(clips)
            stamped = _stamp(pairs, clips, run, stores, settings, material)
            _publish(pairs, clips, stamped, run, stores, settings)
        generation_s = time.perf_counter() - t_gen

    base = run.finish()
    total_s = time.perf_counter() - t_start
    summary = BatchCampaignSummary(
        **base.model_dump(), total_seconds=round(total_s, 3), generation_seconds=round(generation_s, 3),
        videos_per_s=round(base.published / total_s, 4) if total_s > 0 else 0.0,
        generated_per_s=round(base.generated / generation_s, 4) if generation_s > 0 else 0.0,
        actor_busy_seconds=round(busy_s, 3), actors=settings.campaign.batch_actors if admitted else 0,
        batch_size=settings.campaign.batch_size, num_gpus_per_actor=float(num_gpus_per_actor(settings)),
        nodes=dict(nodes), devices=sorted(devices),
    )
    log.info("batch campaign %s: published %d in %.1f s (%.3f videos/s), blocked %d by consent and %d by rights, "
             "%d failed", summary.campaign, summary.published, summary.total_seconds, summary.videos_per_s,
             summary.blocked_consent, summary.blocked_rights, summary.failed)
    return summary
