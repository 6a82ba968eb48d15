"""The ranker inside each Serve ingress replica: score feed candidates with the production version,
and swap versions without dropping a request.

A background thread checks the registry every ``ranking.reload_check_s`` seconds; when the
production pointer moved (a promotion, a rollback), it loads the new version completely and then
replaces one reference. A request holds the bundle it started with to its end, so a swap never
fails or mixes versions mid-request. With no version in production the feed still works: it
ranks by freshness and the popularity the catalog shows (``version`` is then ``None``).

Videos published after the version's snapshot have no engagement counters yet; they are scored
with their real prompt embedding, age and length (cold start), which is what the fresh-video
quota of the feed relies on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from kinora.ranking import features
from kinora.ranking.data import HEADS
from kinora.ranking.model import combine, predict
from kinora.ranking.registry import RankerBundle, Registry, load
from kinora.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Scored:
    scores: np.ndarray  # [N]
    probs: np.ndarray  # [N, heads]; zeros without a model
    taste: np.ndarray  # [N] cosine of the video to the user's taste profile
    steer: np.ndarray  # [N] score shift from steer=
    version: str | None


class ServingRanker:
    def __init__(self, settings: Settings, *, watch: bool = True) -> None:
        self.settings = settings
        self.registry = Registry(settings.ranking_dir)
        self._bundle: RankerBundle | None = None
        self._loaded: str | None = None
        self._lock = threading.Lock()
        self._emb_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._steer_cache: OrderedDict[str, list[tuple[float, str, np.ndarray]]] = OrderedDict()
        self._popular: dict[tuple, list[str]] = {}
        self.reloads = 0
        if settings.ranking.serving_threads:
            import torch

            # 1,000 candidates are a few small matrix products: one thread per replica avoids
            # oversubscribing the cores the other replicas and the web server share (p99).
            torch.set_num_threads(settings.ranking.serving_threads)
        self.check_now()
        if watch:
            threading.Thread(target=self._watch, name="ranker-reload", daemon=True).start()

    # -------------------------------------------------------------------------------- versions
    @property
    def bundle(self) -> RankerBundle | None:
        return self._bundle

    def check_now(self) -> bool:
        """Load the production version if it changed; True when a new one was swapped in."""
        with self._lock:
            try:
                prod = self.registry.production()
            except (OSError, ValueError):
                return False
            if prod == self._loaded:
                return False
            bundle = load(self.registry.path(prod)) if prod else None
            self._bundle, self._loaded = bundle, prod  # one reference swap: requests keep the bundle they hold
            self.reloads += 1
            import gc

            # The version's id maps are large and live until the next swap: keep them out of the
            # collector's full passes, which otherwise pause every request of the replica.
            gc.collect()
            gc.freeze()
            logger.info("feed ranker: now serving %s", prod)
            return True

    def _watch(self) -> None:
        while True:
            time.sleep(self.settings.ranking.reload_check_s)
            try:
                self.check_now()
            except Exception:  # noqa: BLE001 - a bad version must not kill the watcher; keep serving the old one
                logger.exception("feed ranker: could not load the new production version; keeping %s", self._loaded)

    # -------------------------------------------------------------------------------- embeddings
    def _embedder(self):
        from kinora.trust.screening import default_model_dir, load_embedder

        r = self.settings.rights
        return load_embedder(str(r.embedding_model_dir or default_model_dir()), r.embedding_threads, r.embedding_precision)

    def embeddings(self, bundle: RankerBundle | None, ids: list[str], prompts: list[str]) -> np.ndarray:
        """Normalised prompt embeddings: from the snapshot when it has the video, else computed (cached)."""
        out = np.zeros((len(ids), 384), np.float32)
        missing = []
        for i, vid in enumerate(ids):
            j = bundle.catalog.video_index.get(vid) if bundle else None
            if j is not None:
                out[i] = bundle.catalog.video_embedding[j]
            elif vid in self._emb_cache:
                out[i] = self._emb_cache[vid]
            else:
                missing.append(i)
        if missing:
            vecs = self._embedder().encode([prompts[i] for i in missing])
            for i, v in zip(missing, vecs):
                out[i] = v
                self._emb_cache[ids[i]] = v
            while len(self._emb_cache) > 50_000:
                self._emb_cache.popitem(last=False)
        return out

    def steer_terms(self, text: str) -> list[tuple[float, str, np.ndarray]]:
        """'more cooking, less pranks' -> [(+1, 'cooking', e), (-1, 'pranks', e)]; a bare phrase counts as more."""
        key = text.strip().lower()
        if key in self._steer_cache:
            return self._steer_cache[key]
        terms = []
        for part in re.split(r"[,;]|\band\b|\bbut\b", key):
            part = part.strip()
            m = re.match(r"^(more|less|fewer|no|not|without)\s+(.*)$", part)
            sign, phrase = (1.0, part) if m is None else ((1.0 if m.group(1) == "more" else -1.0), m.group(2).strip())
            if phrase:
                terms.append((sign, phrase))
        vecs = self._embedder().encode([p for _, p in terms]) if terms else []
        out = [(s, p, v) for (s, p), v in zip(terms, vecs)]
        self._steer_cache[key] = out
        while len(self._steer_cache) > 1000:
            self._steer_cache.popitem(last=False)
        return out

    # -------------------------------------------------------------------------------- scoring
    def prepare(self, bundle: RankerBundle | None, rows: list, tags: list[set[str]]) -> "Candidates":
        """Per-video arrays of catalog rows (id, published_at, creator_id, prompt, has_cameos), computed
        once: the shared candidates are prepared when the pool is built, not on every request."""
        from kinora.feed import _epoch

        n = len(rows)
        ids = [r.id for r in rows]
        emb = self.embeddings(bundle, ids, [r.prompt for r in rows]) if n else np.zeros((0, 384), np.float32)
        cand = Candidates(rows=list(rows), ids=ids, tags=list(tags),
                          published_s=np.array([_epoch(r.published_at) for r in rows], np.float64),
                          has_cameos=np.array([bool(r.has_cameos) for r in rows], bool), emb=emb)
        if bundle is not None:
            cand.v, cand.c, _, cand.duration = features.locate_videos(bundle.catalog, ids, [r.creator_id for r in rows])
            cand.text = bundle.text.project(emb) if n else np.zeros((0, len(bundle.text.components)), np.float32)
        return cand

    def score(self, bundle: RankerBundle | None, cand: "Candidates", *, user_id: str | None, now_s: float,
              personalized: bool, steer: str | None) -> Scored:
        """Score prepared candidates for ``user_id``."""
        n = len(cand.ids)
        shift = np.zeros(n, np.float32)
        if steer:
            for sign, _, vec in self.steer_terms(steer):
                shift += sign * self.settings.ranking.steer_strength * (cand.emb @ vec)
        age_days = (now_s - cand.published_s) / 86_400.0
        if bundle is None:  # no model yet: fresher first
            base = -np.log1p(np.clip(age_days, 0, None))
            return Scored(base + shift, np.zeros((n, len(HEADS)), np.float32), np.zeros(n, np.float32), shift, None)
        cat, state = bundle.catalog, bundle.state
        u_ix = cat.user_index.get(user_id, len(cat.users)) if (personalized and user_id) else len(cat.users)
        u = np.full(n, u_ix, np.int64)
        p = features.pair_index(state.pair_keys, u, cand.c, len(cat.creators))
        X = features.assemble(state, u, cand.v, cand.c, p, video_text=cand.text, age_days=age_days,
                              duration_s=cand.duration)
        probs = predict(bundle.model, X)
        taste = X[:, bundle.card["features"].index("taste_match")]
        scores = combine(probs, self.settings.ranking.head_weights) + shift
        return Scored(scores, probs, taste.astype(np.float32), shift, bundle.version)

    def popular_ids(self, bundle: RankerBundle | None, k: int) -> list[str]:
        """The snapshot's most viewed videos (decayed), for the popular candidate source (fixed for
        a snapshot, so computed once per bundle and ``k``)."""
        if bundle is None:
            return []
        key = (bundle.version, k)
        hit = self._popular.get(key)
        if hit is None:
            views = bundle.state.video[:-1, features.VIDEO_COUNTERS.index("views")]
            top = np.argsort(-views, kind="stable")[:k]
            hit = [str(bundle.catalog.videos[i]) for i in top if views[i] > 0]
            self._popular = {key: hit}
        return list(hit)


@dataclass
class Candidates:
    """Feed candidates as arrays (see :meth:`ServingRanker.prepare`)."""

    rows: list
    ids: list[str]
    tags: list[set[str]]
    published_s: np.ndarray
    has_cameos: np.ndarray
    emb: np.ndarray
    v: np.ndarray | None = None
    c: np.ndarray | None = None
    text: np.ndarray | None = None
    duration: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "Candidates":
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return Candidates([self.rows[i] for i in idx], [self.ids[i] for i in idx], [self.tags[i] for i in idx],
                          self.published_s[idx], self.has_cameos[idx], self.emb[idx], pick(self.v), pick(self.c),
                          pick(self.text), pick(self.duration))

    @staticmethod
    def concat(a: "Candidates", b: "Candidates") -> "Candidates":
        if not b.ids:
            return a
        cat = lambda x, y: None if x is None or y is None else np.concatenate([x, y])  # noqa: E731
        return Candidates(a.rows + b.rows, a.ids + b.ids, a.tags + b.tags, np.concatenate([a.published_s, b.published_s]),
                          np.concatenate([a.has_cameos, b.has_cameos]), np.concatenate([a.emb, b.emb]), cat(a.v, b.v),
                          cat(a.c, b.c), cat(a.text, b.text), cat(a.duration, b.duration))


class RankedLists:
    """Feed orderings kept per request for the cursor (bounded, oldest dropped first)."""

    def __init__(self, capacity: int = 2048, ttl_s: float = 900.0) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s
        self._items: OrderedDict[str, tuple[float, list]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, request_id: str, items: list) -> None:
        with self._lock:
            self._items[request_id] = (time.monotonic(), items)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, request_id: str) -> list | None:
        with self._lock:
            hit = self._items.get(request_id)
            if hit is None or time.monotonic() - hit[0] > self.ttl_s:
                return None
            return hit[1]
