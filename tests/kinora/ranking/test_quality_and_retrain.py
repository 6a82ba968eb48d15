"""The data-quality gate (bad rows, duplicates, unknown videos; quarantine with a report) and the
ranking-retrain flow."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
from typer.testing import CliRunner

from kinora.cli import app
from kinora.events import EventIn, ingest
from kinora.ranking import data
from kinora.ranking.registry import Registry
from kinora.ranking.snapshot import snapshot_lake
from kinora.stores.bundle import Stores


def _broken_copy(frame: pl.DataFrame) -> pl.DataFrame:
    """The first 2,000 events with a negative watch time, an unknown video and a repeated id."""
    head = frame.head(2000)
    views = head.filter(pl.col("event_type") == "view")
    return pl.concat([
        head,
        views.head(1).with_columns(pl.lit(-40, dtype=pl.Int64).alias("watch_ms"), pl.lit("evt_negative").alias("event_id")),
        head.head(1).with_columns(pl.lit("vid_nobody_knows").alias("video_id"), pl.lit("evt_unknown").alias("event_id")),
        head.head(1),  # the same event_id twice
    ])


def test_train_refuses_a_file_that_fails_the_gate(sim_files, rank_settings, monkeypatch, tmp_path):
    bad = tmp_path / "bad-events.parquet"
    _broken_copy(sim_files["frame"]).write_parquet(bad)
    monkeypatch.setenv("KINORA_HOME", str(rank_settings.home))
    result = CliRunner().invoke(app, ["ranking", "train", "--events", str(bad), "--videos", str(sim_files["videos"])])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = result.output
    assert str(bad) in message
    for expected in ("watch_ms: expect_column_values_to_be_between - 1 rows",
                     "video_id: expect_column_values_to_be_in_set - 1 rows (e.g. 'vid_nobody_knows')",
                     "event_id: expect_column_values_to_be_unique - 2 rows"):
        assert expected in message
    [report] = list((rank_settings.home / "ranking" / "quality").rglob("report.md"))
    text = report.read_text()
    assert "FAIL" in text and "vid_nobody_knows" in text and "| watch_ms | expect_column_values_to_be_between | 1 |" in text
    assert Registry(rank_settings.ranking_dir).list() == []  # nothing trained


def test_wrong_types_are_named(sim_files, rank_settings, monkeypatch, tmp_path):
    bad = tmp_path / "typed.parquet"
    sim_files["frame"].head(100).with_columns(pl.col("watch_ms").cast(pl.Utf8)).write_parquet(bad)
    monkeypatch.setenv("KINORA_HOME", str(rank_settings.home))
    result = CliRunner().invoke(app, ["ranking", "train", "--events", str(bad), "--videos", str(sim_files["videos"])])
    assert result.exit_code == 2 and "watch_ms: expect_column_type_integer - failed (e.g. 'string')" in result.output


def _lake_videos(stores, world, n: int) -> list[str]:
    vids = world.videos_frame().head(n)
    rows = [{"video_id": r["video_id"], "request_id": f"req_{i}", "creator_id": r["creator_id"], "prompt": r["prompt"],
             "duration_ms": r["duration_ms"], "width": 256, "height": 256, "model_family": "ltx2",
             "model_version": "tiny", "cameo_count": 0, "published_at": r["published_at"]}
            for i, r in enumerate(vids.iter_rows(named=True))]
    stores.lake.append("videos", rows)
    return vids["video_id"].to_list()


def _as_events(frame: pl.DataFrame) -> list[EventIn]:
    return [EventIn.model_validate({k: v for k, v in r.items() if v is not None}) for r in frame.iter_rows(named=True)]


def test_a_failing_lake_batch_is_quarantined_and_never_trained_on(sim_files, rank_settings):
    stores = Stores.open(rank_settings)
    known = _lake_videos(stores, sim_files["world"], 1500)
    frame = sim_files["frame"]
    good = ingest(engine=stores.engine, lake=stores.lake, events=_as_events(frame.head(3000)))
    # contract-valid events (the API accepts them) about a video the platform does not know
    stray = frame.slice(3000, 50).with_columns(pl.lit("vid_from_elsewhere").alias("video_id"))
    bad = ingest(engine=stores.engine, lake=stores.lake, events=_as_events(stray))
    assert good.accepted == 3000 and bad.accepted == 50

    out = rank_settings.home / "snap"
    events_dir, videos_path, gate = snapshot_lake(rank_settings.lake_dir, out)
    assert gate.passed == [good.batch_id] and gate.quarantined == [bad.batch_id]
    quarantine = rank_settings.lake_dir / "_quarantine" / "events" / bad.batch_id
    report = (quarantine / "report.md").read_text()
    assert "vid_from_elsewhere" in report and "| video_id | expect_column_values_to_be_in_set | 50 |" in report
    assert list(quarantine.rglob("*.parquet"))  # moved out of the lake, kept for inspection
    snap = data.scan_events(events_dir).collect()
    assert snap.height == 3000 and "vid_from_elsewhere" not in snap["video_id"].to_list()
    assert data.read_videos(videos_path).height == len(known)
    lake_now = data.scan_events(rank_settings.lake_dir / "events").collect()
    assert lake_now.height == 3000  # the quarantined batch left the lake the dashboards read
    # a second gate run checks nothing again and quarantines nothing more
    _, _, again = snapshot_lake(rank_settings.lake_dir, rank_settings.home / "snap2")
    assert again.passed == [good.batch_id] and again.quarantined == [] and again.reports == []


def test_retrain_flow_promotes_once_and_not_again_on_the_same_data(sim_files, rank_settings, monkeypatch, prefect_harness):
    from flows.ranking_retrain import ranking_retrain

    monkeypatch.setenv("KINORA_HOME", str(rank_settings.home))
    monkeypatch.setenv("KINORA_RANKING__EPOCHS", "2")
    monkeypatch.setenv("KINORA_RANKING__BATCH_SIZE", "1024")
    monkeypatch.setenv("KINORA_RANKING__LIGHTGBM_ROUNDS", "20")
    first = ranking_retrain(events=str(sim_files["events"]), videos=str(sim_files["videos"]))
    assert first.promoted and first.production_before is None
    assert first.candidate_ndcg10 > first.baselines_ndcg10["most_popular"]
    assert set(first.seconds) >= {"snapshot", "validate", "features", "train", "evaluate", "gate"}
    reg = Registry(rank_settings.ranking_dir)
    assert reg.production() == first.candidate
    card = reg.card(first.candidate)
    assert card["lineage"]["data_fingerprint"].startswith("events=") and card["params"]["seed"] == 0

    second = ranking_retrain(events=str(sim_files["events"]), videos=str(sim_files["videos"]))
    assert not second.promoted and second.production_before == first.candidate
    assert reg.production() == first.candidate  # an equal model does not clear the margin
    assert any("margin" in r for r in second.reasons)
    assert os.environ["KINORA_HOME"] == str(rank_settings.home)
    assert dt.datetime.fromisoformat(card["created_at"]).tzinfo is not None
