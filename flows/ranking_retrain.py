"""The daily ranking retrain: learn from yesterday's engagement, promote only a measurably better model.

    snapshot (freeze the inputs) -> validate (quality gate; failures quarantined) -> features
      -> train (here or Ray Train) -> evaluate (holdout + baselines) -> save candidate
      -> gate (vs production on the same holdout) -> promote -> serving rankers reload

Inputs are the lake (events that passed the gate, and the published videos, plus an optional
videos file for catalogs Kinora did not generate) or files named by ``events``/``videos``.
Promotion moves the registry pointer; every serving ranker replica checks it every
``ranking.reload_check_s`` seconds and swaps the new version in from a background thread, so no
feed request waits for the load or fails during it. Scheduled daily in ``prefect.yaml``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from kinora.ranking import pipeline
from kinora.ranking.registry import Registry
from kinora.ranking.snapshot import gate_files, snapshot_lake
from kinora.stores.lake import Lake
from kinora.stores.objects import lake_place
from kinora.settings import Settings, load_settings


class RetrainSummary(BaseModel):
    snapshot: str
    batches_passed: int
    batches_quarantined: list[str]
    candidate: str
    candidate_ndcg10: float
    baselines_ndcg10: dict[str, float]
    production_before: str | None
    promoted: bool
    reasons: list[str]
    seconds: dict[str, float]


@task(cache_policy=NO_CACHE)
def take_snapshot(settings: Settings, events: str | None, videos: str | None) -> tuple[Path, Path, int, list[str]]:
    """Freeze the inputs; lake batches go through the quality gate here (failures quarantined)."""
    folder = settings.home / "ranking" / "snapshots" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    if events is None:
        ev, vids, gate = snapshot_lake(Lake(lake_place(settings)), folder, extra_videos=Path(videos) if videos else None)
        return ev, vids, len(gate.passed), gate.quarantined
    if videos is None:
        raise ValueError("events given without videos: name both files, or neither to use the lake")
    return Path(events), Path(videos), 1, []


@task(cache_policy=NO_CACHE)
def validate(settings: Settings, events: Path, videos: Path, from_lake: bool) -> None:
    """Files named by an operator are checked whole; a failure stops the retrain (report written)."""
    if not from_lake:
        gate_files(events, videos, settings.home / "ranking" / "quality" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S"))


@task(cache_policy=NO_CACHE)
def build_features(settings: Settings, events: Path, videos: Path):
    return pipeline.dataset(events, videos, settings, progress=get_run_logger().info)


@task(cache_policy=NO_CACHE)
def train(settings: Settings, ds, trainer: str):
    return pipeline.fit(ds, settings, trainer=trainer, progress=get_run_logger().info)


@task(cache_policy=NO_CACHE)
def evaluate(settings: Settings, model, ds) -> dict:
    return pipeline.assess(model, ds, settings)


@task(cache_policy=NO_CACHE)
def save_candidate(settings: Settings, model, ds, log, metrics, events: Path, videos: Path, timings: dict):
    return pipeline.save_version(model, ds, log, metrics, settings, events=events, videos=videos, timings=timings)


@task(cache_policy=NO_CACHE)
def gate_and_promote(settings: Settings, candidate: Path, events: Path, videos: Path) -> dict:
    return pipeline.gate_and_promote(candidate, events, videos, settings)


@flow(name="ranking-retrain", log_prints=False)
def ranking_retrain(events: str | None = None, videos: str | None = None, trainer: str = "local") -> RetrainSummary:
    """Retrain, evaluate and (if better) promote the feed ranker; settings from KINORA_*."""
    settings = load_settings()
    logger = get_run_logger()
    seconds: dict[str, float] = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        seconds[name] = round(time.perf_counter() - t0, 2)
        return out

    production_before = Registry(settings.ranking_dir).production()
    ev, vids, passed, quarantined = timed("snapshot", take_snapshot, settings, events, videos)
    if quarantined:
        logger.warning("quarantined %d events batches: %s (reports under %s)", len(quarantined), quarantined,
                       f"{settings.lake_location}/_quarantine/events")
    timed("validate", validate, settings, ev, vids, events is None)
    ds = timed("features", build_features, settings, ev, vids)
    model, log = timed("train", train, settings, ds, trainer)
    metrics = timed("evaluate", evaluate, settings, model, ds)
    folder, card = save_candidate(settings, model, ds, log, metrics, ev, vids, dict(seconds))
    result = timed("gate", gate_and_promote, settings, folder, ev, vids)
    logger.info("ranking retrain: candidate %s NDCG@10 %.4f; promoted=%s (%s)", card["version"], metrics["ndcg@10"],
                result["promoted"], "; ".join(result["reasons"]))
    return RetrainSummary(
        snapshot=str(ev), batches_passed=passed, batches_quarantined=quarantined, candidate=card["version"],
        candidate_ndcg10=metrics["ndcg@10"],
        baselines_ndcg10={k: v["ndcg@10"] for k, v in metrics.get("baselines", {}).items()},
        production_before=production_before, promoted=result["promoted"], reasons=result["reasons"], seconds=seconds)
