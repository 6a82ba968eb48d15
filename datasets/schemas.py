"""Contracts of the lake tables: one Arrow schema per table, the same for every writer.

``generations``: one row per campaign or API request once its outcome is known (blocked,
failed or published), with the seconds each stage took. ``decisions``: every consent, rights
and publish decision with its reason. ``videos``: one row per published video. ``events``: the
engagement events app backends send (``POST /v1/events``, ``kinora events import``).
``feed_requests``: one row per ranked feed page Kinora served (which ranker version ordered it),
so engagement can be read per model version. ``verifications``: one row per provenance look-up
(``kinora verify``, ``POST /v1/provenance/verify``) with its verdict.
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
        # rights decisions: the first work matched and its holder (absent in files written before they existed)
        pa.field("holder", pa.string()),
        pa.field("work", pa.string()),
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

# One ranked feed page served (written with its impressions by kinora.ranking.impressions); the
# pages of one request (cursor) share its request_id and its model_version.
FEED_REQUESTS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),  # the impressions' request_id
        pa.field("first_position", pa.int32(), nullable=False),  # the page's first position
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("model_version", pa.string()),  # the ranker version that ordered the page; none: by freshness
        pa.field("personalized", pa.bool_(), nullable=False),
        pa.field("steered", pa.bool_(), nullable=False),
        pa.field("candidates", pa.int32()),
        pa.field("served", pa.int32(), nullable=False),
    ]
)

VERIFY_VERDICTS = ("intact", "stripped_or_reencoded", "tampered", "unknown")

# One provenance look-up: what was asked and what the verifier answered (no file content).
VERIFICATIONS = pa.schema(
    [
        pa.field("verification_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("source", pa.string(), nullable=False),  # api | cli
        pa.field("verdict", pa.string(), nullable=False),  # VERIFY_VERDICTS
        pa.field("c2pa_state", pa.string(), nullable=False),  # trusted | valid | invalid | absent
        pa.field("watermark_found", pa.bool_(), nullable=False),
        pa.field("video_id", pa.string()),  # the catalog video it matched, if any
        pa.field("sha256", pa.string(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {"generations": GENERATIONS, "decisions": DECISIONS, "videos": VIDEOS, "events": EVENTS,
                                "feed_requests": FEED_REQUESTS, "verifications": VERIFICATIONS}
