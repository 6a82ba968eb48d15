"""Training inputs frozen and checked: the lake's events batch by batch through the quality gate,
or the files an operator names, into a snapshot folder a retrain reads.

    lake/events/date=*/...parquet ──(each new batch_id)──> quality gate ──pass──> lake/_quality/events/<batch>.json
                                                                        └─fail──> lake/_quarantine/events/<batch>/
    passing files ──hard links──> <home>/ranking/snapshots/<id>/events/ ;  videos ──> .../videos.parquet

(A lake on object storage: the passing files are downloaded into the snapshot instead.)
Hard links cost nothing and lake files are never rewritten, so a snapshot stays exactly what was
trained on; its fingerprint goes on the model card.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kinora.ranking import data, quality
from kinora.stores.lake import Lake

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


def _as_lake(lake: Lake | Path | str) -> Lake:
    return lake if isinstance(lake, Lake) else Lake(lake)


def _read(lake: Lake, files: list[str], columns: list[str] | None = None) -> pl.DataFrame:
    return pl.read_parquet(files, columns=columns, storage_options=lake.polars_options())


def _lake_batches(lake: Lake) -> dict[str, list[str]]:
    batches: dict[str, list[str]] = {}
    for f in lake.files("events"):
        for b in _read(lake, [f], ["batch_id"])["batch_id"].unique().to_list():
            batches.setdefault(b, []).append(f)
    return batches


def lake_videos(lake: Lake | Path | str) -> pl.DataFrame:
    lake = _as_lake(lake)
    files = lake.files("videos")
    if not files:
        return pl.DataFrame(schema={"video_id": pl.Utf8, "creator_id": pl.Utf8, "prompt": pl.Utf8,
                                    "duration_ms": pl.Int64, "published_at": pl.Datetime("us", "UTC")})
    return _read(lake, files, list(data.VIDEO_COLUMNS)).unique("video_id", keep="last")


def gate_lake(lake: Lake | Path | str, known_videos: list[str], *, now: dt.datetime | None = None) -> GateResult:
    """Check every lake batch not checked before; move failures to quarantine with their report."""
    lake = _as_lake(lake)
    result = GateResult()
    for batch, files in sorted(_lake_batches(lake).items()):
        mark = f"_quality/events/{batch}.json"
        if lake.exists(mark):
            result.passed.append(batch)
            continue
        frame = _read(lake, files).drop("batch_id")
        report = quality.check_events(frame, name=batch, known_videos=known_videos, now=now)
        result.reports.append(report)
        if report.success:
            lake.write_bytes(mark, json.dumps({"rows": report.rows, "files": [lake.place.relative(f) for f in files],
                                               "checked_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode())
            result.passed.append(batch)
            continue
        target = f"_quarantine/events/{batch}"
        lake.write_bytes(f"{target}/report.json", json.dumps(report.raw, indent=1, default=str).encode())
        lake.write_bytes(f"{target}/report.md", report.markdown().encode())
        for f in files:  # whole files: a batch never shares a file with another
            rel = lake.place.relative(f).removeprefix("events/")
            lake.move(f, f"{target}/{rel}")
        logger.warning("quarantined events batch %s: %s", batch, report.summary())
        result.quarantined.append(batch)
    return result


def snapshot_lake(lake: Lake | Path | str, out: Path, *, extra_videos: Path | None = None) -> tuple[Path, Path, GateResult]:
    """Gate the lake's events, then link (or download) the passing files and write the videos into ``out``."""
    lake, out = _as_lake(lake), Path(out)
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
            day, name = f.rsplit("/", 2)[-2:]
            target = events_dir / f"{day}-{name}"
            if not target.exists():
                lake.download(f, target)
            linked += 1
    if not linked:
        raise ValueError(f"no events in the lake at {lake.root} have passed the quality gate yet")
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
