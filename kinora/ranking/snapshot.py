"""Training inputs frozen and checked: the lake's events batch by batch through the quality gate,
or the files an operator names, into a snapshot folder a retrain reads.

    lake/events/date=*/...parquet ──(each new batch_id)──> quality gate ──pass──> lake/_quality/events/<batch>.json
                                                                        └─fail──> lake/_quarantine/events/<batch>/
    passing files ──hard links──> <home>/ranking/snapshots/<id>/events/ ;  videos ──> .../videos.parquet

Hard links cost nothing and lake files are never rewritten, so a snapshot stays exactly what was
trained on; its fingerprint goes on the model card.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kinora.ranking import data, quality

logger = logging.getLogger(__name__)


class DataQualityError(ValueError):
    """Training inputs failed the quality gate; nothing was trained."""

    def __init__(self, reports: list[quality.QualityReport], report_dir: Path) -> None:
        self.reports, self.report_dir = reports, report_dir
        super().__init__(" | ".join(r.summary() for r in reports) + f" (report: {report_dir})")


@dataclass
class GateResult:
    passed: list[str] = field(default_factory=list)  # batch ids
    quarantined: list[str] = field(default_factory=list)
    reports: list[quality.QualityReport] = field(default_factory=list)


def _lake_batches(lake: Path) -> dict[str, list[Path]]:
    files = sorted((lake / "events").glob("date=*/*.parquet"))
    batches: dict[str, list[Path]] = {}
    for f in files:
        for b in pl.read_parquet(f, columns=["batch_id"])["batch_id"].unique().to_list():
            batches.setdefault(b, []).append(f)
    return batches


def lake_videos(lake: Path) -> pl.DataFrame:
    files = sorted((lake / "videos").glob("date=*/*.parquet"))
    if not files:
        return pl.DataFrame(schema={"video_id": pl.Utf8, "creator_id": pl.Utf8, "prompt": pl.Utf8,
                                    "duration_ms": pl.Int64, "published_at": pl.Datetime("us", "UTC")})
    return pl.read_parquet(files, columns=list(data.VIDEO_COLUMNS)).unique("video_id", keep="last")


def gate_lake(lake: Path, known_videos: list[str], *, now: dt.datetime | None = None) -> GateResult:
    """Check every lake batch not checked before; move failures to quarantine with their report."""
    lake = Path(lake)
    done = lake / "_quality" / "events"
    done.mkdir(parents=True, exist_ok=True)
    result = GateResult()
    for batch, files in sorted(_lake_batches(lake).items()):
        if (done / f"{batch}.json").is_file():
            result.passed.append(batch)
            continue
        frame = pl.read_parquet(files).drop("batch_id")
        report = quality.check_events(frame, name=batch, known_videos=known_videos, now=now)
        result.reports.append(report)
        if report.success:
            (done / f"{batch}.json").write_text(json.dumps({"rows": report.rows, "files": [str(f.relative_to(lake)) for f in files],
                                                           "checked_at": dt.datetime.now(dt.timezone.utc).isoformat()}))
            result.passed.append(batch)
            continue
        target = lake / "_quarantine" / "events" / batch
        quality.write_report(report, target)
        for f in files:  # whole files: a batch never shares a file with another
            rel = f.relative_to(lake / "events")
            (target / rel.parent).mkdir(parents=True, exist_ok=True)
            os.replace(f, target / rel)
        logger.warning("quarantined events batch %s: %s", batch, report.summary())
        result.quarantined.append(batch)
    return result


def snapshot_lake(lake: Path, out: Path, *, extra_videos: Path | None = None) -> tuple[Path, Path, GateResult]:
    """Gate the lake's events, then link the passing files and write the videos into ``out``."""
    lake, out = Path(lake), Path(out)
    videos = lake_videos(lake)
    if extra_videos is not None:
        videos = pl.concat([videos, data.read_videos(extra_videos)], how="vertical_relaxed").unique("video_id", keep="last")
    vreport = quality.check_videos(videos, name="lake videos")
    if not vreport.success:
        quality.write_report(vreport, out / "videos-report")
        raise DataQualityError([vreport], out / "videos-report")
    gate = gate_lake(lake, videos["video_id"].to_list())
    passed = set(gate.passed)
    events_dir = out / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    linked = 0
    for batch, files in _lake_batches(lake).items():
        if batch not in passed:
            continue
        for f in files:
            target = events_dir / f"{f.parent.name}-{f.name}"
            if not target.exists():
                try:
                    os.link(f, target)
                except OSError:  # another file system: copy
                    shutil.copy2(f, target)
            linked += 1
    if not linked:
        raise ValueError(f"no events in the lake at {lake} have passed the quality gate yet")
    videos_path = out / "videos.parquet"
    videos.write_parquet(videos_path)
    return events_dir, videos_path, gate


def gate_files(events: Path, videos: Path, report_dir: Path, *, now: dt.datetime | None = None) -> list[quality.QualityReport]:
    """Check named input files; raise :class:`DataQualityError` (reports written) if any fails."""
    vids = data.read_videos(videos)
    reports = [quality.check_videos(vids, name=str(videos), now=now)]
    known = vids["video_id"].to_list()
    paths = data.input_files(Path(events))
    for p in paths:
        frame = data.read_events_raw(p)
        reports.append(quality.check_events(frame, name=str(p), known_videos=known, now=now))
    failed = [r for r in reports if not r.success]
    if failed:
        for i, r in enumerate(failed):
            quality.write_report(r, Path(report_dir) / f"{i:02d}-{Path(r.name).stem}")
        raise DataQualityError(failed, Path(report_dir))
    return reports
