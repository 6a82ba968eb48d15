"""Metrics never fail the request that records them; trace lines are JSON keyed by request id."""

from __future__ import annotations

import json

from kinora import observability


class _Strict:
    """Behaves like a Ray metric: rejects a zero increment and unknown tags."""

    def __init__(self) -> None:
        self.samples = []

    def inc(self, value, tags=None):
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        if tags and set(tags) - {"outcome"}:
            raise ValueError("unknown tag")
        self.samples.append((value, tags))


def test_a_bad_sample_is_dropped_not_raised():
    strict = _Strict()
    safe = observability._Safe(strict)
    safe.inc(0, tags={"outcome": "accepted"})  # a batch of only duplicates accepts nothing
    safe.inc(2, tags={"oops": "x"})
    safe.inc(3, tags={"outcome": "accepted"})
    assert strict.samples == [(3, {"outcome": "accepted"})]


def test_trace_lines_are_json_with_the_request_id(settings):
    observability.configure(settings)
    observability.trace("generation.submitted", request_id="req_x", source="api", campaign_id=None)
    observability.trace("generation.published", request_id="req_x", video_id="vid_y", generate_s=1.5)
    observability.trace("generation.submitted", request_id="req_other")
    lines = list(observability.read_trace(settings.log_dir, "req_x"))
    assert [d["event"] for d in lines] == ["generation.submitted", "generation.published"]
    assert lines[1]["video_id"] == "vid_y" and lines[1]["generate_s"] == 1.5 and "campaign_id" not in lines[0]
    raw = next(settings.log_dir.glob("*.jsonl")).read_text().splitlines()
    assert all(json.loads(line)["level"] == "INFO" for line in raw) and len(raw) == 3
