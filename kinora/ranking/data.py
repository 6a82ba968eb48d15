"""The ranker's inputs: events and videos tables, read lazily, and the examples they make.

An **example** is one impression (a video shown to a user in a feed request) with what the user
then did with it. Engagement events carry no request id, so each is attributed to the latest
impression of the same user and video at or before it (an as-of join): a like on day 3 belongs
to the day-3 showing, not to a showing a week earlier.

Labels per example: ``watch`` (share of the video watched, 0-1), ``like``, ``share``, ``remix``
and ``negative`` (skip, hide or report), and the graded relevance NDCG uses:
0 nothing or negative, 1 viewed, 2 watched half or more, 3 liked, commented or followed the
creator, 4 shared or remixed (hidden or reported is 0 whatever else happened).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kinora.errors import InputFileError

HEADS = ("watch", "like", "share", "remix", "negative")
VIDEO_COLUMNS = ("video_id", "creator_id", "prompt", "duration_ms", "published_at")
EVENT_COLUMNS = ("event_id", "ts", "user_id", "video_id", "event_type", "watch_ms", "position", "request_id")
UTC_US = pl.Datetime("us", "UTC")


def input_files(path: Path) -> list[Path]:
    """The .parquet or .jsonl files a path names (a file, or a folder searched recursively)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".parquet", ".jsonl"} and not p.name.startswith("."))
        if not files:
            raise InputFileError(path, "", "folder holds no .parquet or .jsonl files")
        return files
    if not path.is_file():
        raise InputFileError(path, "", "file not found")
    if path.suffix not in {".parquet", ".jsonl"}:
        raise InputFileError(path, "", "expected a .parquet or .jsonl file (or a folder of them)")
    return [path]


def _scan(path: Path, columns: tuple[str, ...]) -> pl.LazyFrame:
    files = input_files(path)
    if all(f.suffix == ".parquet" for f in files):
        lf = pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert", extra_columns="ignore")
    elif all(f.suffix == ".jsonl" for f in files):
        lf = pl.concat([pl.scan_ndjson(f) for f in files], how="diagonal_relaxed")
    else:
        raise InputFileError(Path(path), "", "mixes .parquet and .jsonl files")
    names = lf.collect_schema().names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputFileError(Path(path), missing[0], "required column missing")
    return lf


def _to_utc(lf: pl.LazyFrame, col: str) -> pl.LazyFrame:
    dtype = lf.collect_schema()[col]
    if dtype == pl.Utf8:
        expr = pl.col(col).str.to_datetime(time_zone="UTC", time_unit="us")
    elif isinstance(dtype, pl.Datetime):
        expr = pl.col(col).dt.replace_time_zone("UTC") if dtype.time_zone is None else pl.col(col).dt.convert_time_zone("UTC")
        expr = expr.dt.cast_time_unit("us")
    else:
        expr = pl.col(col).cast(UTC_US)
    return lf.with_columns(expr.alias(col))


def scan_events(path: Path) -> pl.LazyFrame:
    """Events of the contract (files or a lake folder), typed; quarantined folders are never read."""
    lf = _scan(path, ("event_id", "ts", "user_id", "video_id", "event_type"))
    names = lf.collect_schema().names()
    lf = lf.with_columns([pl.lit(None).alias(c) for c in ("watch_ms", "position", "request_id") if c not in names])
    lf = _to_utc(lf, "ts")
    return lf.select(
        pl.col("event_id").cast(pl.Utf8), "ts", pl.col("user_id").cast(pl.Utf8), pl.col("video_id").cast(pl.Utf8),
        pl.col("event_type").cast(pl.Utf8), pl.col("watch_ms").cast(pl.Int64), pl.col("position").cast(pl.Int32),
        pl.col("request_id").cast(pl.Utf8),
    )


def read_events_raw(path: Path) -> pl.DataFrame:
    """One events file as written (only ``ts`` parsed to UTC), for the quality gate to judge its types."""
    lf = _scan(path, ("event_id", "ts", "user_id", "video_id", "event_type"))
    names = lf.collect_schema().names()
    lf = lf.with_columns([pl.lit(None, dtype=pl.Int64).alias(c) for c in ("watch_ms", "position") if c not in names])
    try:
        return _to_utc(lf, "ts").collect()
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(Path(path), "ts", f"not a UTC timestamp ({str(exc).splitlines()[0][:120]})") from None


def read_videos(path: Path) -> pl.DataFrame:
    lf = _scan(path, VIDEO_COLUMNS)
    lf = _to_utc(lf, "published_at")
    return lf.select(
        pl.col("video_id").cast(pl.Utf8), pl.col("creator_id").cast(pl.Utf8), pl.col("prompt").cast(pl.Utf8),
        pl.col("duration_ms").cast(pl.Int64), "published_at",
    ).unique("video_id", keep="last", maintain_order=True).collect()


def examples(events: pl.LazyFrame) -> pl.LazyFrame:
    """Impressions with their labels and grade (see the module docstring); one row per impression."""
    base = events.unique("event_id", keep="first")
    imps = (base.filter(pl.col("event_type") == "impression")
            .select("ts", "user_id", "video_id", "request_id", "position", pl.col("ts").alias("shown_at"))
            .sort("ts", "request_id", "video_id"))  # a total order: the same examples in the same order every run
    acts = (base.filter(pl.col("event_type") != "impression")
            .select("ts", "user_id", "video_id", "event_type", "watch_ms").sort("ts", "user_id", "video_id", "event_type"))
    attributed = (acts.join_asof(imps.select("ts", "user_id", "video_id", "request_id", "shown_at"),
                                 on="ts", by=["user_id", "video_id"], strategy="backward",
                                 check_sortedness=False)  # both sides sorted by ts above
                  .filter(pl.col("request_id").is_not_null()))
    t = pl.col("event_type")
    labels = attributed.group_by("request_id", "user_id", "video_id").agg(
        pl.col("watch_ms").filter(t == "view").max().alias("watch_ms"),
        (t == "view").any().alias("viewed"),
        (t == "like").any().alias("like"),
        (t == "share").any().alias("share"),
        (t == "remix").any().alias("remix"),
        (t.is_in(["comment", "follow_creator"])).any().alias("connect"),
        (t.is_in(["skip", "hide", "report"])).any().alias("negative"),
        (t.is_in(["hide", "report"])).any().alias("hidden"),
    )
    out = imps.join(labels, on=["request_id", "user_id", "video_id"], how="left").with_columns(
        [pl.col(c).fill_null(False) for c in ("viewed", "like", "share", "remix", "connect", "negative", "hidden")])
    return out


def with_grades(ex: pl.LazyFrame, videos: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``watch`` (ratio of the video's duration) and ``grade`` to :func:`examples` rows."""
    ex = ex.join(videos.select("video_id", "duration_ms"), on="video_id", how="left")
    watch = (pl.col("watch_ms").fill_null(0) / pl.col("duration_ms").clip(lower_bound=1)).clip(0.0, 1.0)
    grade = (pl.when(pl.col("hidden")).then(0)
             .when(pl.col("share") | pl.col("remix")).then(4)
             .when(pl.col("like") | pl.col("connect")).then(3)
             .when(pl.col("viewed") & (watch >= 0.5)).then(2)
             .when(pl.col("viewed")).then(1)
             .otherwise(0))
    return ex.with_columns(watch.cast(pl.Float32).alias("watch"), grade.cast(pl.Int8).alias("grade")).drop("duration_ms")
