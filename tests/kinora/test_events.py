"""Engagement events in: the contract, deduplication, all-or-nothing batches, durability, the
HTTP endpoint and the import command (fed by the simulator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kinora.cli import app
from kinora.events import EventBatchError, ingest, validate
from kinora.stores.schema import event_ids

ROOT = Path(__file__).resolve().parents[2]


def _event(i: int, kind: str = "like", **kw) -> dict:
    base = {"event_id": f"e{i}", "ts": "2026-11-20T10:00:00Z", "user_id": "usr_alice", "video_id": "vid_1",
            "event_type": kind}
    if kind == "view":
        base["watch_ms"] = 1500
    if kind == "impression":
        base |= {"position": 0, "request_id": "req_feed1"}
    return base | kw


def _stored(stores) -> tuple[int, int]:
    with stores.engine.connect() as conn:
        ids = conn.execute(sa.select(sa.func.count()).select_from(event_ids)).scalar()
    return stores.lake.read("events").num_rows, ids


def test_repeats_are_counted_not_stored(stores):
    first = ingest(engine=stores.engine, lake=stores.lake,
                   events=validate([_event(1), _event(2, "view"), _event(1), _event(3, "impression")]))
    assert (first.received, first.accepted, first.duplicates) == (4, 3, 1)
    again = ingest(engine=stores.engine, lake=stores.lake, events=validate([_event(2, "view"), _event(4, "skip")]))
    assert (again.accepted, again.duplicates) == (1, 1)
    assert _stored(stores) == (4, 4)
    table = stores.lake.read("events").to_pylist()
    assert sorted(r["event_id"] for r in table) == ["e1", "e2", "e3", "e4"]
    view = next(r for r in table if r["event_id"] == "e2")
    assert view["watch_ms"] == 1500 and view["ts"].isoformat() == "2026-11-20T10:00:00+00:00"


@pytest.mark.parametrize("bad, field, message", [
    ({"event_type": "view"}, "event", "a view needs watch_ms"),
    ({"event_type": "impression"}, "event", "an impression needs position and request_id"),
    ({"event_type": "dislike"}, "event_type", "Input should be"),
    ({"ts": "2026-11-20T10:00:00"}, "ts", "needs a time zone"),
    ({"ts": "2030-01-01T00:00:00Z"}, "ts", "outside"),
    ({"watch_ms": -5, "event_type": "view"}, "watch_ms", "greater than or equal to 0"),
    ({"colour": "red"}, "colour", "Extra inputs"),
])
def test_one_bad_event_refuses_the_batch(stores, bad, field, message):
    batch = [_event(1), _event(2) | bad]  # a like, changed
    with pytest.raises(EventBatchError) as err:
        validate(batch)
    assert err.value.index == 1 and err.value.field == field and message in err.value.message
    assert _stored(stores) == (0, 0)


def test_an_answered_batch_survives_the_process_dying_at_once(settings):
    """The child ingests, prints the result (the answer), and is killed before any cleanup."""
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from kinora.settings import Settings
from kinora.stores.bundle import Stores
from kinora.events import ingest, validate
stores = Stores.open(Settings(home={str(settings.home)!r}, store={settings.store.model_dump(exclude_none=True)!r}))
events = [{{"event_id": f"k{{i}}", "ts": "2026-11-20T10:00:00Z", "user_id": "u", "video_id": "v", "event_type": "like"}}
          for i in range(1000)]
result = ingest(engine=stores.engine, lake=stores.lake, events=validate(events))
print(result.accepted, flush=True)
os._exit(0)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINORA_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "1000", done.stderr[-2000:]
    from kinora.stores.bundle import Stores

    assert _stored(Stores.open(settings)) == (1000, 1000)


def test_http_events_202_dedupe_and_errors(settings, stores):
    from kinora.auth import create_key
    from kinora.provenance.certs import load_signer_material
    from kinora.seed import seed
    from serving.api import create_api

    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        writer = create_key(conn=conn, user_handle="studio", name="events", scopes=["events:write"])[1]
        reader = create_key(conn=conn, user_handle="alice", name="no-events")[1]

    async def never(_request):
        raise AssertionError("events do not generate")

    small = settings.model_copy(update={"events": settings.events.model_copy(update={"max_batch": 5})})
    api = create_api(settings=small, stores=stores, generate=never,
                     material=load_signer_material(settings.provenance, settings.cert_dir))
    with TestClient(api) as client:
        auth = {"Authorization": f"Bearer {writer}"}
        batch = {"events": [_event(1), _event(2, "view"), _event(3, "impression")]}
        ok = client.post("/v1/events", json=batch, headers=auth)
        assert ok.status_code == 202 and ok.json()["accepted"] == 3 and ok.json()["duplicates"] == 0
        again = client.post("/v1/events", json=batch, headers=auth)
        assert again.status_code == 202 and again.json()["accepted"] == 0 and again.json()["duplicates"] == 3
        bad = client.post("/v1/events", json={"events": [_event(4), _event(5, "view", watch_ms=None)]}, headers=auth)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "events[1].event"]
        assert bad.json()["detail"][0]["msg"] == "a view needs watch_ms"
        big = client.post("/v1/events", json={"events": [_event(i) for i in range(10, 16)]}, headers=auth)
        assert big.status_code == 413 and "at most 5" in big.json()["detail"]
        denied = client.post("/v1/events", json=batch, headers={"Authorization": f"Bearer {reader}"})
        assert denied.status_code == 403
        assert client.post("/v1/events", json=batch).status_code == 401
    assert _stored(stores) == (3, 3)


def test_cli_import_of_simulated_events_jsonl_and_parquet(settings, stores, monkeypatch, tmp_path):
    from datasets.simulator import SimConfig, build_world, simulate

    events = simulate(build_world(SimConfig(users=200, creators=20, videos=500, days=3.0, seed=1)), sessions=200, seed=2)
    parquet = tmp_path / "events.parquet"
    events.write_parquet(parquet)
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("".join(json.dumps(r, default=str) + "\n" for r in events.head(500).with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).iter_rows(named=True)))
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    runner = CliRunner()
    first = runner.invoke(app, ["events", "import", str(jsonl)])
    assert first.exit_code == 0 and "imported 500 events" in first.output, first.output
    second = runner.invoke(app, ["events", "import", str(parquet)])
    assert second.exit_code == 0, second.output
    assert f"imported {events.height - 500} events" in second.output and "(500 already ingested" in second.output
    assert _stored(stores) == (events.height, events.height)
    assert pq.read_table(stores.lake.files("events")[0]).schema.field("ts").type.tz == "UTC"

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_event(1)) + "\n\n" + json.dumps(_event(2, "view") | {"watch_ms": None}) + "\n")
    bad = runner.invoke(app, ["events", "import", str(broken)])
    assert bad.exit_code == 2 and "broken.jsonl: line 3, field event: a view needs watch_ms" in bad.output
    assert "Traceback" not in bad.output
    assert _stored(stores) == (events.height, events.height)  # nothing of the broken file
