"""The ranker end to end on a small simulated history: features, training, evaluation, the gate,
the registry, the CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from kinora.cli import app
from kinora.ranking import data, features, pipeline
from kinora.ranking.model import train
from kinora.ranking.registry import Registry, RegistryError, load


def test_examples_attribute_engagement_to_the_latest_showing():
    t = lambda h: f"2026-11-0{h}T10:00:00Z"  # noqa: E731
    rows = [
        {"event_id": "a", "ts": t(1), "user_id": "u", "video_id": "v", "event_type": "impression", "position": 0, "request_id": "r1"},
        {"event_id": "b", "ts": t(3), "user_id": "u", "video_id": "v", "event_type": "impression", "position": 4, "request_id": "r2"},
        {"event_id": "c", "ts": "2026-11-03T10:00:05Z", "user_id": "u", "video_id": "v", "event_type": "like"},
        {"event_id": "d", "ts": "2026-11-03T10:00:04Z", "user_id": "u", "video_id": "v", "event_type": "view", "watch_ms": 3000},
        {"event_id": "d", "ts": "2026-11-03T10:00:04Z", "user_id": "u", "video_id": "v", "event_type": "view", "watch_ms": 3000},
    ]
    events = pl.DataFrame(rows).lazy().with_columns(pl.col("ts").str.to_datetime(time_zone="UTC", time_unit="us"),
                                                    pl.col("watch_ms").cast(pl.Int64))
    videos = pl.DataFrame({"video_id": ["v"], "duration_ms": [4000]}).lazy()
    ex = data.with_grades(data.examples(events), videos).collect().sort("request_id")
    assert ex["request_id"].to_list() == ["r1", "r2"]
    assert ex["like"].to_list() == [False, True] and ex["grade"].to_list() == [0, 3]
    assert ex["watch"].to_list() == [0.0, 0.75]


def test_features_never_see_the_day_they_describe(sim_files, rank_settings):
    ds = pipeline.dataset(sim_files["events"], sim_files["videos"], rank_settings)
    col = ds.features.index("video_log_views_all_time")
    frame = sim_files["frame"]
    # the first training day (day 1) sees only day 0's views
    first_day = ds.train["ts"].min() // features.DAY_US
    day0 = frame.filter((pl.col("event_type") == "view")
                        & (pl.col("ts").dt.epoch("us") // features.DAY_US < first_day))
    counts = day0.group_by("video_id").len()
    vid = counts.sort("len", descending=True)["video_id"][0]
    expected = counts.filter(pl.col("video_id") == vid)["len"][0]
    vi = ds.catalog.video_index[vid]
    rows = (ds.train["v"] == vi) & (ds.train["ts"] // features.DAY_US == first_day)
    assert rows.any()
    assert np.allclose(np.expm1(ds.train["X"][rows, col]), expected, atol=1e-3)
    assert ds.holdout["ts"].min() >= int(ds.holdout_start.timestamp() * 1e6) > ds.train["ts"].max()


def test_training_is_deterministic_for_a_seed(sim_files, rank_settings):
    ds = pipeline.dataset(sim_files["events"], sim_files["videos"], rank_settings)
    X, labels = ds.train["X"][:20_000], {k: ds.train[k][:20_000] for k in data.HEADS}
    kw = dict(hidden=[32, 16], epochs=1, batch_size=512, learning_rate=2e-3, threads=2)
    a, _ = train(X, labels, seed=5, **kw)
    b, _ = train(X, labels, seed=5, **kw)
    c, _ = train(X, labels, seed=6, **kw)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.heads.weight, c.heads.weight)


def test_the_ranker_beats_the_popularity_baselines(sim_files, rank_settings):
    folder, card = pipeline.train_model(sim_files["events"], sim_files["videos"], rank_settings)
    m = card["metrics"]
    assert m["ndcg@10"] > m["baselines"]["most_popular"]["ndcg@10"] + 0.02
    assert m["ndcg@10"] > m["baselines"]["recent_popular"]["ndcg@10"] + 0.01
    assert 0.55 < m["heads"]["like"]["auc"] < 1.0 and 0.55 < m["heads"]["watch"]["auc"] < 1.0
    assert 0.7 < m["heads"]["watch"]["mean_pred_over_observed"] < 1.3
    assert card["lineage"]["data_fingerprint"].startswith(f"events={sim_files['frame'].height};")
    assert card["lineage"]["code_version"].startswith("src-")
    bundle = load(folder)  # the saved version scores like the trained one
    assert bundle.model.heads.weight.shape == (5, rank_settings.ranking.hidden[-1])


def test_gate_refuses_a_worse_model_and_rollback_restores(sim_files, rank_settings):
    from kinora.settings import Settings

    reg = Registry(rank_settings.ranking_dir)
    good, _ = pipeline.train_model(sim_files["events"], sim_files["videos"], rank_settings, with_baselines=False)
    first = pipeline.gate_and_promote(good, sim_files["events"], sim_files["videos"], rank_settings)
    assert first["promoted"] and reg.production() == good.name
    # a crippled candidate: two hidden units, one pass with a tiny learning rate
    weak_settings = Settings(home=rank_settings.home, ranking={"epochs": 1, "hidden": [2], "learning_rate": 1e-5,
                                                               "batch_size": 4096})
    weak, _ = pipeline.train_model(sim_files["events"], sim_files["videos"], weak_settings, with_baselines=False)
    refused = pipeline.gate_and_promote(weak, sim_files["events"], sim_files["videos"], rank_settings)
    assert not refused["promoted"] and reg.production() == good.name
    assert any("NDCG@10" in r and "< production" in r for r in refused["reasons"])
    # the same model again does not clear the margin either
    again = pipeline.gate_and_promote(good, sim_files["events"], sim_files["videos"], rank_settings)
    assert not again["promoted"]

    reg.promote(weak.name, "forced by operator")
    assert reg.production() == weak.name
    reg.rollback()
    assert reg.production() == good.name
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_cli_train_evaluate_score_promote_rollback(sim_files, rank_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("KINORA_HOME", str(rank_settings.home))
    monkeypatch.setenv("KINORA_RANKING__EPOCHS", "2")
    monkeypatch.setenv("KINORA_RANKING__BATCH_SIZE", "1024")
    monkeypatch.setenv("KINORA_RANKING__LIGHTGBM_ROUNDS", "20")
    runner = CliRunner()
    ev, vi = str(sim_files["events"]), str(sim_files["videos"])
    trained = runner.invoke(app, ["ranking", "train", "--events", ev, "--videos", vi])
    assert trained.exit_code == 0, trained.output
    card = json.loads(trained.stdout[trained.stdout.index("{"):])
    version = card["version"]
    assert set(card["metrics"]["baselines"]) == {"most_popular", "recent_popular", "lightgbm_lambdarank"}

    evaluated = runner.invoke(app, ["ranking", "evaluate", "--model", version, "--events", ev, "--videos", vi])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert metrics["ndcg@10"] == card["metrics"]["ndcg@10"]  # same holdout, same model

    assert runner.invoke(app, ["ranking", "promote", version]).exit_code == 2  # neither data nor --force
    promoted = runner.invoke(app, ["ranking", "promote", version, "--events", ev, "--videos", vi])
    assert promoted.exit_code == 0, promoted.output
    assert Registry(rank_settings.ranking_dir).production() == version

    world = sim_files["world"]
    pairs = pl.DataFrame({"user_id": [world.user_ids[0]] * 3 + ["usr_never_seen"],
                          "video_id": list(world.video_ids[:3]) + ["vid_unknown"]})
    pairs.write_parquet(tmp_path / "pairs.parquet")
    scored = runner.invoke(app, ["ranking", "score", "--model", "production", "--events", ev, "--videos", vi,
                                 "--pairs", str(tmp_path / "pairs.parquet"), "--out", str(tmp_path / "s.parquet")])
    assert scored.exit_code == 0, scored.output
    out = pl.read_parquet(tmp_path / "s.parquet")
    assert out.height == 4 and out["score"].is_finite().all()
    assert out.select(pl.col("p_like").is_between(0, 1).all()).item()
    assert len(set(out["score"].to_list())) == 4  # pairs are told apart

    rolled = runner.invoke(app, ["ranking", "rollback"])
    assert rolled.exit_code == 2 and "nothing to roll back" in rolled.output
    bad_pairs = runner.invoke(app, ["ranking", "score", "--model", version, "--events", ev, "--videos", vi,
                                    "--pairs", vi, "--out", str(tmp_path / "x.parquet")])
    assert bad_pairs.exit_code == 2 and "user_id, video_id" in bad_pairs.output and "Traceback" not in bad_pairs.output
    unknown = runner.invoke(app, ["ranking", "evaluate", "--model", "rk-nope", "--events", ev, "--videos", vi])
    assert unknown.exit_code == 2 and "unknown ranker version 'rk-nope'" in unknown.output


def test_the_whole_pipeline_is_deterministic_on_the_same_history(sim_files, rank_settings):
    runs = []
    for _ in range(2):
        pipeline._EMBED_CACHE.clear()  # embed the prompts again too
        ds = pipeline.dataset(sim_files["events"], sim_files["videos"], rank_settings)
        model, _ = pipeline.fit(ds, rank_settings)
        runs.append((ds, model, pipeline.metrics_for(model, ds, rank_settings)))
    (ds_a, a, ma), (ds_b, b, mb) = runs
    assert np.array_equal(ds_a.train["X"], ds_b.train["X"]) and np.array_equal(ds_a.train["request"], ds_b.train["request"])
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert ma == mb
