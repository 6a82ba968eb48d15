"""A feed simulator: users, creators and videos with hidden tastes, and the engagement events a
feed would log, for training and judging rankers without real users.

The world (all drawn from one seed):

- **users** have latent interests over ``topics`` (a sparse Dirichlet), an activity rate and a
  patience (how much of a video they watch when it suits them);
- **creators** have a topic mix and a quality; a few users follow each creator (affinity);
- **videos** take a topic from their creator's mix, a quality around the creator's, a duration
  of 1-20 s, a publish time spread over the simulated days, and a prompt written from their
  topic's words (so text features carry signal, as real prompts do).

A session is a feed request at a time ``t``: ``candidates`` live videos are drawn (half among
the last two days' uploads, half among all), ranked by the ranker under test (any callable, or
at random), and the first ``feed_length`` are shown. Each impression at position ``p`` is
examined with probability ``1 / (1 + p) ** position_decay`` (position bias); an examined video
is viewed with probability ``sigmoid(match)``, where ``match`` sums the user's interest in its
topic, the video's quality, freshness ``exp(-age / freshness_days)``, creator affinity and
Gaussian noise. A view watches a share of the video that grows with ``match``; likes, comments,
shares, remixes and follows follow from ``match`` at decreasing rates; unviewed impressions may
be skipped, and a poor match is sometimes hidden or reported. So a ranker that learns the hidden
tastes earns more engagement per session than popularity or chance, which is the point.

Everything is vectorised with NumPy: one million events take a few seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from datasets.schemas import EVENT_TYPES

TOPIC_WORDS = [
    ("cooking", ["pasta", "kitchen", "chef", "spices", "dumplings", "bakery", "soup"]),
    ("pets", ["puppy", "kitten", "parrot", "hamster", "dog park", "cat tower", "goldfish"]),
    ("travel", ["mountain pass", "old town", "night train", "harbour", "desert road", "island", "market"]),
    ("sports", ["skateboard", "surfing", "basketball", "climbing wall", "marathon", "tennis", "skiing"]),
    ("music", ["guitar", "choir", "drum kit", "street band", "violin", "dj booth", "piano"]),
    ("science", ["telescope", "volcano", "microscope", "rocket", "aurora", "lab bench", "fossil"]),
    ("fashion", ["runway", "sneakers", "thrift shop", "tailor", "hat", "jacket", "dress"]),
    ("comedy", ["prank", "slapstick", "sitcom", "pie in the face", "banana peel", "clown", "parody"]),
    ("gaming", ["arcade", "controller", "pixel world", "speedrun", "boss fight", "retro console", "quest"]),
    ("nature", ["forest", "waterfall", "meadow", "coral reef", "thunderstorm", "sunrise", "fox"]),
    ("art", ["watercolour", "sculpture", "mural", "ink drawing", "pottery", "gallery", "origami"]),
    ("diy", ["workbench", "bookshelf", "garden bed", "bike repair", "candle making", "knitting", "tiny house"]),
    ("dance", ["ballet", "breakdance", "tango", "flash mob", "hip hop", "waltz", "tap shoes"]),
    ("cars", ["vintage car", "race track", "road trip", "garage", "electric car", "drift", "car wash"]),
    ("history", ["castle", "museum", "ancient ruins", "steam engine", "knight", "scroll", "old map"]),
    ("space", ["astronaut", "moon base", "nebula", "space station", "comet", "mars rover", "galaxy"]),
]
_STYLES = ["cinematic", "slow motion", "time-lapse", "close-up", "aerial", "handheld", "golden hour", "neon-lit"]
_ACTIONS = ["at dawn", "in the rain", "under neon lights", "on a windy day", "at night", "in winter", "by the sea"]

Ranker = Callable[["World", np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(world, user indices [S], candidate video indices [S, C], times in days [S]) -> scores [S, C]."""


@dataclass
class SimConfig:
    users: int = 5_000
    creators: int = 300
    videos: int = 20_000
    topics: int = 16
    days: float = 14.0
    start: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    sessions_per_user_per_day: float = 1.5
    candidates: int = 60
    feed_length: int = 10
    position_decay: float = 0.6
    freshness_days: float = 2.0
    noise: float = 0.8
    seed: int = 0


@dataclass
class World:
    """The hidden truth and the public catalog of one simulation."""

    config: SimConfig
    interests: np.ndarray  # [users, topics]
    activity: np.ndarray  # [users] sessions per day multiplier
    patience: np.ndarray  # [users]
    creator_quality: np.ndarray  # [creators]
    follows: np.ndarray  # [users, creators] bool (sparse in practice)
    video_topic: np.ndarray  # [videos]
    video_creator: np.ndarray  # [videos]
    video_quality: np.ndarray  # [videos]
    video_duration_ms: np.ndarray  # [videos]
    video_published_day: np.ndarray  # [videos] days since start, sorted ascending
    prompts: list[str] = field(repr=False)

    @property
    def user_ids(self) -> np.ndarray:
        return np.array([f"usr_sim{i:06d}" for i in range(self.config.users)])

    @property
    def video_ids(self) -> np.ndarray:
        return np.array([f"vid_sim{i:07d}" for i in range(self.config.videos)])

    def videos_frame(self) -> pl.DataFrame:
        """The videos table of the event contract (what Kinora knows; no hidden topic or quality)."""
        start = self.config.start
        published = [start + dt.timedelta(days=float(d)) for d in self.video_published_day]
        return pl.DataFrame({
            "video_id": self.video_ids,
            "creator_id": [f"usr_creator{c:05d}" for c in self.video_creator],
            "prompt": self.prompts,
            "duration_ms": self.video_duration_ms.astype(np.int64),
            "published_at": published,
        }).with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC")))

    def match(self, users: np.ndarray, videos: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """The hidden engagement logit (without noise) of users x videos at times ``t_days``."""
        c = self.config
        interest = self.interests[users[..., None] if videos.ndim > users.ndim else users, self.video_topic[videos]]
        age = np.clip((t_days[..., None] if videos.ndim > t_days.ndim else t_days) - self.video_published_day[videos], 0, None)
        follow = self.follows[users[..., None] if videos.ndim > users.ndim else users, self.video_creator[videos]]
        return (-1.6 + 6.0 * interest + 0.8 * self.video_quality[videos] + 0.8 * np.exp(-age / c.freshness_days)
                + 1.0 * follow)


def build_world(config: SimConfig | None = None) -> World:
    c = config or SimConfig()
    if c.topics > len(TOPIC_WORDS):
        raise ValueError(f"topics: at most {len(TOPIC_WORDS)}")
    rng = np.random.default_rng(c.seed)
    interests = rng.dirichlet(np.full(c.topics, 0.3), size=c.users)
    activity = rng.lognormal(0.0, 0.6, c.users)
    patience = rng.beta(4, 2, c.users)
    creator_mix = rng.dirichlet(np.full(c.topics, 0.2), size=c.creators)
    creator_quality = rng.normal(0, 1, c.creators)
    follows = rng.random((c.users, c.creators)) < 3.0 / c.creators  # ~3 follows per user
    video_creator = rng.integers(0, c.creators, c.videos)
    cum = creator_mix.cumsum(axis=1)[video_creator]
    video_topic = np.minimum((rng.random((c.videos, 1)) > cum).sum(axis=1), c.topics - 1)
    video_quality = 0.6 * creator_quality[video_creator] + rng.normal(0, 0.6, c.videos)
    video_duration_ms = rng.integers(1_000, 20_001, c.videos)
    video_published_day = np.sort(rng.uniform(-2.0, c.days, c.videos))  # some before the window starts
    words = rng.integers(0, 7, c.videos)
    style, action = rng.integers(0, len(_STYLES), c.videos), rng.integers(0, len(_ACTIONS), c.videos)
    prompts = [f"{_STYLES[s]} {TOPIC_WORDS[t][1][w]} {_ACTIONS[a]}"
               for t, w, s, a in zip(video_topic, words, style, action)]
    return World(c, interests, activity, patience, creator_quality, follows, video_topic, video_creator,
                 video_quality, video_duration_ms, video_published_day, prompts)


def random_ranker(world: World, users: np.ndarray, candidates: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Chance: the baseline every ranker must beat."""
    return np.random.default_rng(int(t[0] * 1e6) if len(t) else 0).random(candidates.shape)


def oracle_ranker(world: World, users: np.ndarray, candidates: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The hidden truth itself (the ceiling; for tests and benchmarks, never for training)."""
    return world.match(users, candidates, t)


def simulate(world: World, ranker: Ranker | None = None, *, sessions: int | None = None, seed: int = 1,
             day_range: tuple[float, float] | None = None) -> pl.DataFrame:
    """Serve feed sessions ranked by ``ranker`` (random when None) and return their events.

    ``sessions``: how many feed requests (default: the config's rate over its days).
    ``day_range``: the window sessions fall in (default the config's whole span).
    """
    c = world.config
    rng = np.random.default_rng(seed)
    lo, hi = day_range or (0.0, c.days)
    if sessions is None:
        sessions = int(c.users * c.sessions_per_user_per_day * (hi - lo))
    users = rng.choice(c.users, size=sessions, p=world.activity / world.activity.sum())
    t = np.sort(rng.uniform(lo, hi, sessions))
    live = np.searchsorted(world.video_published_day, t, side="right")  # videos [0, live) are published by t
    if (live == 0).any():
        raise ValueError("a session falls before any video is published; widen the catalog or the day range")
    recent = np.searchsorted(world.video_published_day, t - 2.0, side="left")
    half = c.candidates // 2
    fresh = recent[:, None] + (rng.random((sessions, half)) * (live - recent)[:, None]).astype(np.int64)
    anything = (rng.random((sessions, c.candidates - half)) * live[:, None]).astype(np.int64)
    candidates = np.concatenate([np.minimum(fresh, live[:, None] - 1), anything], axis=1)
    scores = (ranker or random_ranker)(world, users, candidates, t)
    order = np.argsort(-scores, axis=1, kind="stable")[:, : c.feed_length]
    shown = np.take_along_axis(candidates, order, axis=1)  # [S, L]
    return _engage(world, rng, users, t, shown)


def _engage(world: World, rng: np.random.Generator, users: np.ndarray, t: np.ndarray, shown: np.ndarray) -> pl.DataFrame:
    c = world.config
    s, length = shown.shape
    pos = np.broadcast_to(np.arange(length), (s, length))
    u = np.broadcast_to(users[:, None], (s, length))
    tt = np.broadcast_to(t[:, None], (s, length))
    m = world.match(u, shown, tt) + rng.normal(0, c.noise, (s, length))
    examined = rng.random((s, length)) < 1.0 / (1.0 + pos) ** c.position_decay
    viewed = examined & (rng.random((s, length)) < _sigmoid(m))
    ratio = np.clip(world.patience[u] * _sigmoid(m + rng.normal(0, 0.5, (s, length))) * 1.3, 0.02, 1.0)
    watch_ms = np.rint(ratio * world.video_duration_ms[shown]).astype(np.int64)
    like = viewed & (rng.random((s, length)) < _sigmoid(m - 2.0))
    comment = viewed & (rng.random((s, length)) < _sigmoid(m - 4.0))
    share = viewed & (rng.random((s, length)) < _sigmoid(m - 3.5))
    remix = viewed & (rng.random((s, length)) < _sigmoid(m - 4.5))
    follow = like & ~world.follows[u, world.video_creator[shown]] & (rng.random((s, length)) < 0.05)
    skip = examined & ~viewed & (rng.random((s, length)) < 0.5)
    hide = examined & (rng.random((s, length)) < 0.03 * _sigmoid(-m - 1.0))
    report = hide & (rng.random((s, length)) < 0.1)

    request = np.repeat(np.arange(s), length).reshape(s, length)
    # each event a little after its impression, in feed order (positions ~4 s apart)
    offsets_s = pos * 4.0 + 0.5
    parts = [("impression", np.ones((s, length), bool), 0.0)]
    parts += [("view", viewed, 0.3), ("like", like, 2.0), ("comment", comment, 2.5), ("share", share, 3.0),
              ("remix", remix, 3.2), ("follow_creator", follow, 3.4), ("skip", skip, 0.4), ("hide", hide, 0.6),
              ("report", report, 0.8)]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("type", "user", "video", "ts", "watch", "position", "request")}
    for name, mask, delay in parts:
        idx = np.nonzero(mask)
        cols["type"].append(np.full(len(idx[0]), EVENT_TYPES.index(name), np.int8))
        cols["user"].append(u[idx])
        cols["video"].append(shown[idx])
        cols["ts"].append(tt[idx] * 86_400.0 + offsets_s[idx] + delay)
        cols["watch"].append(np.where(name == "view", watch_ms[idx], -1))
        cols["position"].append(np.where(name == "impression", pos[idx], -1))
        cols["request"].append(np.where(name == "impression", request[idx], -1))
    kind = np.concatenate(cols["type"])
    ts = np.concatenate(cols["ts"])
    order = np.argsort(ts, kind="stable")
    n = len(order)
    start_us = int(c.start.timestamp() * 1_000_000)
    request_ids = np.concatenate(cols["request"])[order]
    frame = pl.DataFrame({
        "event_id": np.arange(n),
        "ts": (start_us + np.rint(ts[order] * 1_000_000)).astype(np.int64),
        "user_id": np.concatenate(cols["user"])[order],
        "video_id": np.concatenate(cols["video"])[order],
        "event_type": kind[order],
        "watch_ms": np.concatenate(cols["watch"])[order],
        "position": np.concatenate(cols["position"])[order].astype(np.int32),
        "request_id": request_ids,
    })
    seed_tag = f"{c.seed:x}"
    return frame.select(
        (pl.lit(f"evt_s{seed_tag}_") + pl.col("event_id").cast(pl.Utf8).str.zfill(10)).alias("event_id"),
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        (pl.lit("usr_sim") + pl.col("user_id").cast(pl.Utf8).str.zfill(6)).alias("user_id"),
        (pl.lit("vid_sim") + pl.col("video_id").cast(pl.Utf8).str.zfill(7)).alias("video_id"),
        pl.col("event_type").replace_strict(list(range(len(EVENT_TYPES))), list(EVENT_TYPES), return_dtype=pl.Utf8),
        pl.when(pl.col("watch_ms") >= 0).then(pl.col("watch_ms")).otherwise(None).alias("watch_ms"),
        pl.when(pl.col("position") >= 0).then(pl.col("position")).otherwise(None).alias("position"),
        pl.when(pl.col("request_id") >= 0).then(pl.lit(f"req_sim{seed_tag}_") + pl.col("request_id").cast(pl.Utf8))
        .otherwise(None).alias("request_id"),
    )


def engagement_per_session(events: pl.DataFrame) -> dict[str, float]:
    """Views, watch seconds, likes and hides per feed session: how a ranker's feed did."""
    sessions = events.filter(pl.col("event_type") == "impression")["request_id"].n_unique()
    counts = events.group_by("event_type").len()
    per = {row["event_type"]: row["len"] / max(1, sessions) for row in counts.iter_rows(named=True)}
    watch = events.filter(pl.col("event_type") == "view")["watch_ms"].sum() / 1000 / max(1, sessions)
    return {"sessions": sessions, "views": per.get("view", 0.0), "watch_s": float(watch or 0.0),
            "likes": per.get("like", 0.0), "hides": per.get("hide", 0.0)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def popularity_ranker(world: World, history: pl.DataFrame, half_life_days: float | None = None) -> Ranker:
    """Rank candidates by views in ``history`` (events of this world): "most popular", or with
    ``half_life_days`` each view weighted by its age at the end of the history ("recent popular").
    The baselines a learned ranker has to beat."""
    views = history.filter(pl.col("event_type") == "view").select(
        pl.col("video_id").str.slice(7).cast(pl.Int64).alias("v"), pl.col("ts"))
    if views.is_empty():
        counts = np.zeros(world.config.videos)
    else:
        idx = views["v"].to_numpy()
        weights = None
        if half_life_days is not None:
            age_days = ((views["ts"].max() - views["ts"]).dt.total_seconds() / 86_400.0).to_numpy()
            weights = 0.5 ** (age_days / half_life_days)
        counts = np.bincount(idx, weights=weights, minlength=world.config.videos).astype(float)
    jitter = np.random.default_rng(world.config.seed).random(world.config.videos) * 1e-6  # stable tie-break

    def rank(world: World, users: np.ndarray, candidates: np.ndarray, t: np.ndarray) -> np.ndarray:
        return counts[candidates] + jitter[candidates]

    return rank
