"""Benchmark: the feed simulator's speed, and what a ranker that knows the hidden tastes earns.

    .venv/bin/python benchmarks/simulator.py [--events 1000000]

* ``speed``: builds the default world (5,000 users, 300 creators, 20,000 videos, 14 days) and
  simulates feed sessions until at least ``--events`` events exist: seconds and events/s. Goal:
  one million events in under 60 s. Baseline in the same run: the same engagement model written
  as a plain Python loop over impressions, timed on 2,000 sessions and extrapolated per event
  (what the vectorised version saves).
* ``closed_loop``: engagement per session (views, watch seconds, likes, hides) when the same
  20,000 sessions of days 10-14 are ranked at random, by most popular and by recent popular
  (views in 50,000 random sessions of days 0-10) and by the hidden truth (the ceiling a learned
  ranker tends to).

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _python_loop(world, sessions: int, seed: int = 2) -> tuple[int, float]:
    """The engagement model, one impression at a time (random ranking), building one record per
    event as a straightforward implementation would: (events, seconds)."""
    import bisect
    import datetime as dt
    import random

    c = world.config
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    rows = []
    for s in range(sessions):
        user = rnd.randrange(c.users)
        t = rnd.uniform(0.0, c.days)
        live = max(1, bisect.bisect_right(world.video_published_day, t))
        for pos in range(c.feed_length):
            v = rnd.randrange(live)
            ts = c.start + dt.timedelta(days=t, seconds=pos * 4.0)

            def emit(kind: str, **extra) -> None:
                rows.append({"event_id": f"evt_{len(rows):010d}", "ts": ts, "user_id": f"usr_sim{user:06d}",
                             "video_id": f"vid_sim{v:07d}", "event_type": kind, **extra})

            emit("impression", position=pos, request_id=f"req_{s}")
            interest = world.interests[user][world.video_topic[v]]
            age = max(0.0, t - world.video_published_day[v])
            follow = world.follows[user][world.video_creator[v]]
            m = (-1.6 + 6.0 * interest + 0.8 * world.video_quality[v] + 0.8 * math.exp(-age / c.freshness_days)
                 + 1.0 * follow + rnd.gauss(0, c.noise))
            if rnd.random() < 1.0 / (1.0 + pos) ** c.position_decay:
                if rnd.random() < 1 / (1 + math.exp(-m)):
                    emit("view", watch_ms=int(world.video_duration_ms[v] * world.patience[user]))
                    for kind, shift in (("like", 2.0), ("comment", 4.0), ("share", 3.5), ("remix", 4.5)):
                        if rnd.random() < 1 / (1 + math.exp(-(m - shift))):
                            emit(kind)
                elif rnd.random() < 0.5:
                    emit("skip")
    return len(rows), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    from datasets.simulator import (SimConfig, build_world, engagement_per_session, oracle_ranker, popularity_ranker,
                                    simulate)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    world = build_world(SimConfig())
    config = world.config
    per_session = 14.0  # events per session at the default rates (measured: ~13.5)
    sessions = max(1, math.ceil(args.events / per_session))
    frames, made = [], 0
    seed = 1
    while made < args.events:
        frame = simulate(world, sessions=sessions, seed=seed)
        frames.append(frame)
        made += frame.height
        seed += 1
        sessions = max(1, math.ceil((args.events - made) / per_session))
    seconds = time.perf_counter() - t0
    loop_events, loop_s = _python_loop(world, 2_000)
    loop_per_event = loop_s / max(1, loop_events)

    history = simulate(world, sessions=50_000, seed=99, day_range=(0.0, 10.0))  # served at random
    window = (10.0, world.config.days)
    chance = engagement_per_session(simulate(world, sessions=20_000, seed=100, day_range=window))
    popular = engagement_per_session(simulate(world, popularity_ranker(world, history), sessions=20_000, seed=100,
                                              day_range=window))
    recent = engagement_per_session(simulate(world, popularity_ranker(world, history, half_life_days=1.0),
                                             sessions=20_000, seed=100, day_range=window))
    oracle = engagement_per_session(simulate(world, oracle_ranker, sessions=20_000, seed=100, day_range=window))
    out = {
        "benchmark": "simulator",
        "world": {"users": config.users, "creators": config.creators, "videos": config.videos, "days": config.days},
        "speed": {"events": made, "seconds": round(seconds, 2), "events_per_s": round(made / seconds)},
        "baseline_python_loop": {"events": loop_events, "seconds": round(loop_s, 2),
                                 "extrapolated_seconds_for_same_events": round(loop_per_event * made, 1)},
        "ratio": round(loop_per_event * made / seconds, 1),
        "closed_loop": {"history": "50,000 random sessions on days 0-10; feeds on days 10-14",
                        "random": chance, "most_popular": popular, "recent_popular": recent, "oracle": oracle,
                        "views_ratio": round(oracle["views"] / chance["views"], 2),
                        "likes_ratio": round(oracle["likes"] / chance["likes"], 2)},
        "goals": {"seconds_for_1m_events": 60},
        "goals_met": {"seconds_for_1m_events": bool(made >= 1_000_000 and seconds < 60) if args.events >= 1_000_000 else None},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
