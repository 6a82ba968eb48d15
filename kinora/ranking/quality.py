"""The data-quality gate in front of training: a Great Expectations suite for events and videos.

Every batch of events (an ingestion batch of the lake, or a file given to ``kinora ranking
train``) is validated before a model may learn from it: required columns, types, the event-type
enumeration, non-negative watch time (and present on views), positions on impressions, unique
event ids, timestamps between 2020 and tomorrow, and every event's video known. Videos: unique
ids, a creator, a prompt, a sane duration, a publish time in range.

A failing lake batch is moved out of the lake into ``<lake>/_quarantine/events/<batch_id>/``
with ``report.md`` (readable: which expectation, how many rows, examples) and ``report.json``
(Great Expectations' own result); a retrain never reads it. Passing batches are recorded, so
each is checked once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from datasets.schemas import EVENT_TYPES

logger = logging.getLogger(__name__)

EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
# Column types are checked on the Polars schema: Great Expectations 1.x's type-list expectations
# do not recognise pandas 3's dtypes (every type name fails, measured with GX 1.24.1).
EVENT_TYPES_OF = {"event_id": "string", "ts": "datetime", "user_id": "string", "video_id": "string",
                  "event_type": "string", "watch_ms": "integer", "position": "integer", "request_id": "string"}
VIDEO_TYPES_OF = {"video_id": "string", "creator_id": "string", "prompt": "string", "duration_ms": "integer",
                  "published_at": "datetime"}


@dataclass
class Failure:
    expectation: str
    column: str | None
    unexpected: int | None
    examples: list

    def line(self) -> str:
        where = f"{self.column}: " if self.column else ""
        count = f"{self.unexpected} rows" if self.unexpected is not None else "failed"
        ex = f" (e.g. {', '.join(repr(x) for x in self.examples[:3])})" if self.examples else ""
        return f"{where}{self.expectation} - {count}{ex}"


@dataclass
class QualityReport:
    table: str
    name: str  # the batch id or file checked
    rows: int
    success: bool
    failures: list[Failure] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        if self.success:
            return f"{self.table} {self.name}: {self.rows} rows pass every expectation"
        return f"{self.table} {self.name}: " + "; ".join(f.line() for f in self.failures)

    def markdown(self) -> str:
        lines = [f"# Data-quality report: {self.table} `{self.name}`", "",
                 f"- rows: {self.rows}", f"- result: {'PASS' if self.success else 'FAIL (quarantined)'}",
                 f"- checked: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}", ""]
        if self.failures:
            lines += ["| column | expectation | unexpected rows | examples |", "|---|---|---|---|"]
            lines += [f"| {f.column or ''} | {f.expectation} | {f.unexpected if f.unexpected is not None else ''} | "
                      f"{', '.join(repr(x) for x in f.examples[:5])} |" for f in self.failures]
        return "\n".join(lines) + "\n"


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("kinora")
    batches = {name: source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
               for name in ("events", "videos")}
    return gx, batches


def events_suite(known_videos: list[str] | None, now: dt.datetime):
    gx, _ = _context()
    E = gx.expectations
    suite = gx.ExpectationSuite(name="events")
    for col in ("event_id", "ts", "user_id", "video_id", "event_type"):
        suite.add_expectation(E.ExpectColumnToExist(column=col))
        suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(E.ExpectColumnValuesToBeUnique(column="event_id"))
    suite.add_expectation(E.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="ts", min_value=EARLIEST, max_value=now + dt.timedelta(days=1)))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="watch_ms", min_value=0, max_value=3_600_000))
    suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column="watch_ms", row_condition='event_type=="view"',
                                                          condition_parser="pandas"))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="position", min_value=0))
    suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column="position", row_condition='event_type=="impression"',
                                                          condition_parser="pandas"))
    if known_videos is not None:
        suite.add_expectation(E.ExpectColumnValuesToBeInSet(column="video_id", value_set=known_videos))
    return suite


def videos_suite(now: dt.datetime):
    gx, _ = _context()
    E = gx.expectations
    suite = gx.ExpectationSuite(name="videos")
    for col in ("video_id", "creator_id", "prompt", "duration_ms", "published_at"):
        suite.add_expectation(E.ExpectColumnToExist(column=col))
        suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(E.ExpectColumnValuesToBeUnique(column="video_id"))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="duration_ms", min_value=1, max_value=600_000))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="published_at", min_value=EARLIEST,
                                                          max_value=now + dt.timedelta(days=1)))
    return suite


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Utf8 or dtype == pl.Categorical:
        return "string"
    if isinstance(dtype, pl.Datetime):
        return "datetime" if dtype.time_zone is not None else "naive datetime"
    if dtype.is_integer() or dtype == pl.Null:
        return "integer"
    return str(dtype)


def _types(frame: pl.DataFrame, expected: dict[str, str]) -> list[Failure]:
    return [Failure(f"expect_column_type_{want}", col, None, [_kind(frame.schema[col])])
            for col, want in expected.items() if col in frame.columns and _kind(frame.schema[col]) != want]


def _run(table: str, name: str, frame: pl.DataFrame, suite, types: dict[str, str]) -> QualityReport:
    _, batches = _context()
    failures = _types(frame, types)
    pdf = frame.select([c for c in frame.columns if c not in {f.column for f in failures}]).to_pandas()
    result = batches[table].get_batch(batch_parameters={"dataframe": pdf}).validate(suite, result_format="SUMMARY")
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        res = r.result or {}
        examples = res.get("partial_unexpected_list") or []
        failures.append(Failure(cfg.type, cfg.kwargs.get("column"), res.get("unexpected_count"),
                                [str(x) for x in examples[:5]]))
    return QualityReport(table, name, frame.height, not failures, failures, result.to_json_dict())


def check_events(frame: pl.DataFrame, *, name: str, known_videos: list[str] | None,
                 now: dt.datetime | None = None) -> QualityReport:
    """Validate one batch of events (a Polars frame as read from the lake or a file)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return _run("events", name, frame, events_suite(known_videos, now), EVENT_TYPES_OF)


def check_videos(frame: pl.DataFrame, *, name: str, now: dt.datetime | None = None) -> QualityReport:
    now = now or dt.datetime.now(dt.timezone.utc)
    return _run("videos", name, frame, videos_suite(now), VIDEO_TYPES_OF)


def write_report(report: QualityReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report.raw, indent=1, default=str))
    (folder / "report.md").write_text(report.markdown())
    return folder / "report.md"
