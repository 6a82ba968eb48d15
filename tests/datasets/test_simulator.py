"""The feed simulator: the event contract, determinism, position bias, and that a ranker which
knows the hidden tastes earns more engagement than chance (closing the loop)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from datasets.simulator import (EVENT_TYPES, SimConfig, build_world, engagement_per_session, oracle_ranker,
                                simulate)

SMALL = SimConfig(users=800, creators=60, videos=3_000, days=5.0, seed=3)


@pytest.fixture(scope="module")
def world():
    return build_world(SMALL)


@pytest.fixture(scope="module")
def events(world):
    return simulate(world, sessions=4_000, seed=5)


def test_events_follow_the_contract(world, events):
    assert events.columns == ["event_id", "ts", "user_id", "video_id", "event_type", "watch_ms", "position", "request_id"]
    assert events.schema["ts"] == pl.Datetime("us", "UTC")
    assert events["event_id"].n_unique() == events.height
    assert set(events["event_type"].unique()) <= set(EVENT_TYPES)
    assert {"impression", "view", "like", "skip"} <= set(events["event_type"].unique())
    views = events.filter(pl.col("event_type") == "view")
    others = events.filter(pl.col("event_type") != "view")
    assert views["watch_ms"].null_count() == 0 and others["watch_ms"].null_count() == others.height
    impressions = events.filter(pl.col("event_type") == "impression")
    assert impressions["position"].null_count() == 0 and impressions["request_id"].null_count() == 0
    assert impressions.height == 4_000 * SMALL.feed_length
    rest = events.filter(pl.col("event_type") != "impression")
    assert rest["position"].null_count() == rest["request_id"].null_count() == rest.height
    start = SMALL.start
    assert events["ts"].min() >= start and events["ts"].max() <= start + dt.timedelta(days=SMALL.days, minutes=5)


def test_every_event_names_a_published_video_it_could_have_seen(world, events):
    videos = world.videos_frame()
    assert videos.columns == ["video_id", "creator_id", "prompt", "duration_ms", "published_at"]
    joined = events.join(videos, on="video_id", how="left")
    assert joined["creator_id"].null_count() == 0  # every event's video is known
    assert (joined["published_at"] <= joined["ts"]).all()  # nothing is seen before it is published
    views = joined.filter(pl.col("event_type") == "view")
    assert ((views["watch_ms"] > 0) & (views["watch_ms"] <= views["duration_ms"])).all()


def test_same_seed_same_events(world):
    a = simulate(world, sessions=300, seed=9)
    b = simulate(world, sessions=300, seed=9)
    assert a.equals(b)
    assert not a.equals(simulate(world, sessions=300, seed=10))


def test_position_bias(events):
    views = events.filter(pl.col("event_type") == "view").select("video_id", pl.lit(1).alias("viewed"),
                                                                  pl.col("user_id"))
    imp = events.filter(pl.col("event_type") == "impression").select("user_id", "video_id", "position")
    rate = (imp.join(views, on=["user_id", "video_id"], how="left").group_by("position")
            .agg(pl.col("viewed").fill_null(0).mean().alias("rate")).sort("position"))
    assert rate["rate"][0] > 1.5 * rate["rate"][-1]  # random order: the top slot is viewed far more


def test_a_ranker_that_knows_the_tastes_earns_more_than_chance(world):
    chance = engagement_per_session(simulate(world, sessions=3_000, seed=11))
    oracle = engagement_per_session(simulate(world, oracle_ranker, sessions=3_000, seed=11))
    assert oracle["views"] > 1.5 * chance["views"] and oracle["likes"] > 2 * chance["likes"]
    assert oracle["hides"] < chance["hides"]


def test_prompts_carry_their_topic(world):
    from datasets.simulator import TOPIC_WORDS

    for topic, prompt in list(zip(world.video_topic, world.prompts))[:200]:
        assert any(word in prompt for word in TOPIC_WORDS[topic][1])


def test_popularity_baselines_sit_between_chance_and_the_truth():
    from datasets.simulator import popularity_ranker

    w = build_world(SimConfig(users=2_000, creators=150, videos=8_000, days=10.0, seed=4))
    history = simulate(w, sessions=20_000, seed=1, day_range=(0, 7))  # served at random

    def views(ranker):
        return engagement_per_session(simulate(w, ranker, sessions=5_000, seed=2, day_range=(7, 10)))["views"]

    chance, popular, recent, truth = (views(None), views(popularity_ranker(w, history)),
                                      views(popularity_ranker(w, history, half_life_days=1.0)), views(oracle_ranker))
    assert chance < popular < truth and chance < recent < truth
    assert truth > 1.5 * max(popular, recent)  # plenty of room for a learned ranker
