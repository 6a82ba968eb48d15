"""Contracts of the lake tables: one Arrow schema per table, the same for every writer.

``generations``: one row per campaign or API request once its outcome is known (blocked,
failed or published), with the seconds each stage took. ``decisions``: every consent, rights
and publish decision with its reason. ``videos``: one row per published video. ``events``: the
engagement events app backends send (``POST /v1/events``, ``kinora events import``).
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

GENERATIONS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string()),
        pa.field("requester_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # campaign | api
        pa.field("status", pa.string(), nullable=False),  # published | blocked_consent | blocked_rights | failed | skipped_existing
        pa.field("reason", pa.string()),
        pa.field("video_id", pa.string()),
        pa.field("model_family", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("device", pa.string()),  # where the clip was generated ("cpu", "cuda:0")
        pa.field("consent_s", pa.float64()),
        pa.field("rights_s", pa.float64()),
        pa.field("queue_s", pa.float64()),  # waiting for the generator (incl. batching), from the caller's side
        pa.field("generate_s", pa.float64()),  # the pipeline call (a batch's, when batched)
        pa.field("stamp_s", pa.float64()),
        pa.field("mux_s", pa.float64()),  # H.264 + AAC encode, part of stamp_s
        pa.field("publish_s", pa.float64()),
        pa.field("ts", TS, nullable=False),
    ]
)

DECISIONS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),  # consent | rights | publish
        pa.field("outcome", pa.string(), nullable=False),  # allow | block | allow_with_terms
        pa.field("reason", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
    ]
)

VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("creator_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string()),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("duration_ms", pa.int64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("model_family", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("c2pa_state", pa.string()),
        pa.field("cameo_count", pa.int32(), nullable=False),
        pa.field("published_at", TS, nullable=False),
    ]
)

EVENT_TYPES = ("impression", "view", "like", "share", "remix", "comment", "follow_creator", "skip", "hide", "report")

# Engagement events (the feed's contract with app backends): one row per event, unique event_id.
# watch_ms on views; position and request_id on impressions.
EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("watch_ms", pa.int64()),
        pa.field("position", pa.int32()),
        pa.field("request_id", pa.string()),
        pa.field("batch_id", pa.string(), nullable=False),  # the ingestion batch that wrote it
    ]
)

TABLES: dict[str, pa.Schema] = {"generations": GENERATIONS, "decisions": DECISIONS, "videos": VIDEOS, "events": EVENTS}
