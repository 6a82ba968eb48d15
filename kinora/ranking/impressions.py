"""Impressions the feed served, logged as engagement events (position and request id included),
and one ``feed_requests`` row per page (which ranker version ordered it, for analytics).

Feed requests must not wait on a Parquet write and an fsync, so served items go into a buffer
that a background thread flushes every ``ranking.impression_flush_s`` seconds into the lake's
``events`` table (fsynced, like every lake write). The buffer holds plain columns and the file is
built from them in one step: building per-row objects held the interpreter lock for ~40 ms per
900 impressions, which showed as feed latency on the other requests of the replica. Event ids are
``imp_<request_id>_<position>``, unique by construction, so no deduplication claim is needed; a
flush that fails keeps its rows for the next round and writes nothing. ``flush()`` drains the
buffer at once (tests, shutdown).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import sqlalchemy as sa

from kinora.ids import new_id
from kinora.stores.lake import Lake

logger = logging.getLogger(__name__)


class ImpressionLog:
    def __init__(self, *, engine: sa.Engine, lake: Lake, flush_s: float, max_buffer: int = 200_000) -> None:
        self.engine, self.lake, self.flush_s, self.max_buffer = engine, lake, flush_s, max_buffer
        self._pages: list[tuple[str, str, list[str], int, datetime, dict]] = []
        self._size = 0
        self._lock = threading.Lock()
        self.logged = 0
        self.dropped = 0
        threading.Thread(target=self._loop, name="impression-log", daemon=True).start()

    def record(self, *, request_id: str, user_id: str, video_ids: list[str], first_position: int,
               model_version: str | None = None, personalized: bool = True, steered: bool = False,
               candidates: int | None = None) -> None:
        page = dict(model_version=model_version, personalized=personalized, steered=steered, candidates=candidates)
        with self._lock:
            if self._size + len(video_ids) > self.max_buffer:  # the lake is down: shed, never block the feed
                self.dropped += len(video_ids)
                return
            self._pages.append((request_id, user_id, list(video_ids), first_position, datetime.now(timezone.utc), page))
            self._size += len(video_ids)

    def flush(self) -> int:
        with self._lock:
            pages, self._pages, self._size = self._pages, [], 0
        if not pages:
            return 0
        by_day: dict[str, dict[str, list]] = {}
        requests: dict[str, list[dict]] = {}
        for request_id, user_id, videos, first, ts, page in pages:
            requests.setdefault(ts.date().isoformat(), []).append(dict(
                request_id=request_id, first_position=first, ts=ts, user_id=user_id, served=len(videos), **page))
            cols = by_day.setdefault(ts.date().isoformat(), {k: [] for k in ("event_id", "ts", "user_id", "video_id",
                                                                               "event_type", "position", "request_id")})
            n = len(videos)
            positions = range(first, first + n)
            cols["event_id"] += [f"imp_{request_id}_{p}" for p in positions]
            cols["ts"] += [ts] * n
            cols["user_id"] += [user_id] * n
            cols["video_id"] += videos
            cols["event_type"] += ["impression"] * n
            cols["position"] += list(positions)
            cols["request_id"] += [request_id] * n
        written, done = 0, set()
        try:
            for day, cols in by_day.items():
                cols["batch_id"] = [new_id("evb")] * len(cols["event_id"])
                self.lake.append_columns("events", cols, day=day)
                written += len(cols["event_id"])
                done.add(day)
                self._write_requests(requests[day])
        except Exception:  # noqa: BLE001 - keep the days not written for the next round
            kept = [p for p in pages if p[4].date().isoformat() not in done]
            logger.exception("impression log: flush failed; %d pages kept for the next round", len(kept))
            with self._lock:
                self._pages[:0] = kept
                self._size += sum(len(p[2]) for p in kept)
            self.logged += written
            return written
        self.logged += written
        return written

    def _write_requests(self, rows: list[dict]) -> None:
        """The pages' rows; analytics only, so a failure is logged and never re-sends the impressions."""
        try:
            self.lake.append("feed_requests", rows)
        except Exception:  # noqa: BLE001
            logger.exception("impression log: %d feed_requests rows not written", len(rows))

    def _loop(self) -> None:
        while True:
            time.sleep(self.flush_s)
            self.flush()
