"""Impressions the feed served, logged as engagement events (position and request id included).

Feed requests must not wait on a Parquet write and an fsync, so served items go into a buffer
that a background thread flushes every ``ranking.impression_flush_s`` seconds through the same
ingestion path as ``POST /v1/events`` (deduplicated by event id, durable in the lake). Event ids
are ``imp_<request_id>_<position>``: a page logged twice is stored once. ``flush()`` drains the
buffer at once (tests, shutdown).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import sqlalchemy as sa

from kinora.events import EventIn, ingest
from kinora.stores.lake import Lake

logger = logging.getLogger(__name__)


class ImpressionLog:
    def __init__(self, *, engine: sa.Engine, lake: Lake, flush_s: float, max_buffer: int = 200_000) -> None:
        self.engine, self.lake, self.flush_s, self.max_buffer = engine, lake, flush_s, max_buffer
        self._buf: list[EventIn] = []
        self._lock = threading.Lock()
        self.logged = 0
        self.dropped = 0
        threading.Thread(target=self._loop, name="impression-log", daemon=True).start()

    def record(self, *, request_id: str, user_id: str, video_ids: list[str], first_position: int) -> None:
        now = datetime.now(timezone.utc)
        events = [EventIn(event_id=f"imp_{request_id}_{first_position + i}", ts=now, user_id=user_id, video_id=v,
                          event_type="impression", position=first_position + i, request_id=request_id)
                  for i, v in enumerate(video_ids)]
        with self._lock:
            if len(self._buf) + len(events) > self.max_buffer:  # the lake is down: shed, never block the feed
                self.dropped += len(events)
                return
            self._buf.extend(events)

    def flush(self) -> int:
        with self._lock:
            batch, self._buf = self._buf, []
        if not batch:
            return 0
        try:
            result = ingest(engine=self.engine, lake=self.lake, events=batch)
        except Exception:  # noqa: BLE001 - put them back and try again next round
            logger.exception("impression log: flush failed; %d impressions kept for the next round", len(batch))
            with self._lock:
                self._buf[:0] = batch
            return 0
        self.logged += result.accepted
        return result.accepted

    def _loop(self) -> None:
        while True:
            time.sleep(self.flush_s)
            self.flush()
