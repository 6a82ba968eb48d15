"""Engagement events in: validate, drop what was seen before, write the lake durably.

    validate every event -> drop repeats (in the batch, then against ``event_ids``) ->
    claim the new ids and write them to the lake's ``events`` table in one transaction

The contract (:data:`datasets.schemas.EVENTS`): ``event_id`` (unique), ``ts`` (UTC),
``user_id``, ``video_id``, ``event_type`` in :data:`datasets.schemas.EVENT_TYPES`, ``watch_ms``
on views, ``position`` and ``request_id`` on impressions. A batch is all or nothing: one bad event
refuses the batch, naming it and the field. :func:`ingest` returns only once the new events are
fsynced to the lake and their ids committed, so an answer given after it loses nothing if the
process dies next. (If the process dies between the two, the ids are not claimed and a retry
writes the events again; readers deduplicate on ``event_id``.)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datasets.schemas import EVENT_TYPES
from kinora.errors import InputFileError, pydantic_location
from kinora.ids import new_id
from kinora.stores import utcnow
from kinora.stores.lake import Lake
from kinora.stores.schema import event_ids, hidden_videos

EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
FUTURE_SLACK = dt.timedelta(days=1)  # clients' clocks drift; a day ahead is a bug, not drift


class EventIn(BaseModel):
    """One engagement event as app backends send it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=128, description="Unique per event; a repeat is dropped.")
    ts: dt.datetime = Field(description="When it happened, with a time zone (stored as UTC).")
    user_id: str = Field(min_length=1, max_length=64)
    video_id: str = Field(min_length=1, max_length=64)
    event_type: Literal[EVENT_TYPES] = Field(description="impression, view, like, share, remix, comment, "  # type: ignore[valid-type]
                                                         "follow_creator, skip, hide or report.")
    watch_ms: int | None = Field(None, ge=0, le=3_600_000, description="Milliseconds watched (views).")
    position: int | None = Field(None, ge=0, le=10_000, description="Slot in the feed (impressions).")
    request_id: str | None = Field(None, max_length=64, description="The feed request that showed it (impressions).")

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-12-01T10:00:00Z)")
        v = v.astimezone(dt.timezone.utc)
        if v < EARLIEST or v > dt.datetime.now(dt.timezone.utc) + FUTURE_SLACK:
            raise ValueError(f"{v.isoformat()} is outside {EARLIEST.date()} .. tomorrow")
        return v

    @model_validator(mode="after")
    def _per_type(self) -> "EventIn":
        if self.event_type == "view" and self.watch_ms is None:
            raise ValueError("a view needs watch_ms")
        if self.event_type == "impression" and (self.position is None or not self.request_id):
            raise ValueError("an impression needs position and request_id")
        return self


class IngestResult(BaseModel):
    batch_id: str
    received: int
    accepted: int = Field(description="New events written to the lake.")
    duplicates: int = Field(description="Events whose event_id was already ingested (or repeated in the batch).")


class EventBatchError(ValueError):
    """One event of a batch breaks the contract; nothing of the batch was stored."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"events[{index}].{field}: {message}")
        self.index, self.field, self.message = index, field, message


def validate(raw: list[dict]) -> list[EventIn]:
    """Every event checked; the first bad one raises :class:`EventBatchError` naming it."""
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(EventIn.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            message = err["msg"].removeprefix("Value error, ")
            raise EventBatchError(i, pydantic_location(err["loc"]) or "event", message) from None
    return out


def _insert_ignoring_repeats(conn: sa.Connection):
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing``): PostgreSQL's or SQLite's."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _claim(conn: sa.Connection, ids: list[str], batch_id: str) -> set[str]:
    """Insert the ids not seen before; return those (the database decides, so concurrent batches agree)."""
    insert = _insert_ignoring_repeats(conn)
    now, new = utcnow(), set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = (insert(event_ids).values([{"event_id": e, "batch_id": batch_id, "ingested_at": now} for e in chunk])
             .on_conflict_do_nothing(index_elements=["event_id"]).returning(event_ids.c.event_id))
        new.update(conn.execute(q).scalars())
    return new


def _remember_hides(conn: sa.Connection, events: list[EventIn]) -> None:
    """Hide and report events also go to ``hidden_videos``: the feed reads them on every request."""
    if not events:
        return
    insert = _insert_ignoring_repeats(conn)
    pairs = {(e.user_id, e.video_id): e.ts for e in events}
    conn.execute(insert(hidden_videos).values([{"user_id": u, "video_id": v, "hidden_at": ts}
                                               for (u, v), ts in pairs.items()])
                 .on_conflict_do_nothing(index_elements=["user_id", "video_id"]))


def ingest(*, engine: sa.Engine, lake: Lake, events: list[EventIn]) -> IngestResult:
    """Store the new events of one validated batch; see the module docstring for the guarantees."""
    batch_id = new_id("evb")
    first: dict[str, EventIn] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    with engine.begin() as conn:
        new = _claim(conn, list(first), batch_id)
        rows = [e.model_dump() | {"batch_id": batch_id} for eid, e in first.items() if eid in new]
        _remember_hides(conn, [e for eid, e in first.items() if eid in new and e.event_type in ("hide", "report")])
        lake.append("events", rows)  # fsynced; an exception here rolls the claims back
    return IngestResult(batch_id=batch_id, received=len(events), accepted=len(rows), duplicates=len(events) - len(rows))


def read_event_file(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a Parquet or JSONL events file as dicts (validated by the caller), and where each
    row is in the file ("line 7", "row 6") for error messages."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "", "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a broken file
            raise InputFileError(path, "", f"not a readable Parquet file ({type(exc).__name__})") from None
        rows = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
        return rows, [f"row {i}" for i in range(len(rows))]
    if suffix in {".jsonl", ".ndjson"}:
        rows, where = [], []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(path, f"line {n}", f"not valid JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise InputFileError(path, f"line {n}", "each line must be a JSON object")
            rows.append(item)
            where.append(f"line {n}")
        return rows, where
    raise InputFileError(path, "", "events files are .parquet or .jsonl")
