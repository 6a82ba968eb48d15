"""The feeds, with consent re-checked at every serve.

Two orders. :func:`feed_page`: newest first (``GET /v1/feed`` without a user). :func:`ranked_feed`:
a user's feed ranked by the production ranker, under the rules below. Either way, before a page
leaves, every candidate's consent is checked again in one batch
(:func:`kinora.trust.consent.check_videos`), so a video whose cameo was revoked, restricted or
un-approved a moment ago is not served, whether or not the sweep has caught up.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa

from kinora.ids import new_id
from kinora.settings import Settings
from kinora.stores import catalog
from kinora.trust.consent import check_videos


@dataclass
class FeedPage:
    videos: list[sa.Row]
    next_cursor: tuple[datetime, str] | None
    withheld: int  # candidates dropped because consent no longer holds


_MAX_BATCH = 4096  # candidates checked per round once many in a row were withheld


def feed_page(*, conn: sa.Connection, settings: Settings, limit: int, cursor: tuple[datetime, str] | None = None) -> FeedPage:
    """Up to ``limit`` servable videos after ``cursor``.

    Candidates are checked in rounds; a round that withholds some doubles the next round's size,
    so a run of thousands of lapsed videos at the top of the feed (a popular cameo revoked a
    moment ago, before the sweep) costs a few large batched checks, not hundreds of small ones.
    """
    limit = max(1, min(limit, settings.consent.feed_page_max))
    served: list[sa.Row] = []
    withheld = 0
    batch = limit * 2
    while len(served) < limit:
        candidates = catalog.feed_candidates(conn=conn, limit=batch, before=cursor)
        if not candidates:
            cursor = None
            break
        verdicts = check_videos(conn=conn, videos=candidates, max_cameos=settings.consent.max_cameos_per_video)
        for v in candidates:
            cursor = (v.published_at, v.id)
            if verdicts[v.id].holds:
                served.append(v)
                if len(served) == limit:
                    break
            else:
                withheld += 1
        if len(candidates) < batch and len(served) < limit:
            cursor = None
            break
        batch = min(batch * 2, _MAX_BATCH)
    full = catalog.videos_with_creators(conn=conn, ids=[v.id for v in served])
    return FeedPage(videos=[full[v.id] for v in served], next_cursor=cursor if len(served) == limit else None,
                    withheld=withheld)


# ============================================================================ the ranked feed (#7)
#
#   candidates (fresh, popular, followed creators, friends' cameos)
#     -> drop what the user hid -> rank (production ranker; steer= shifts by embedding similarity)
#     -> rules: consent and rights hold now, at most N in a row from one creator, a share of fresh
#     -> page (+ cursor), each item with why it is there; impressions logged by the caller

_EPOCHS: OrderedDict = OrderedDict()


def _epoch(d: datetime) -> float:
    """Seconds since the epoch; SQLite hands back naive datetimes, which are UTC here (memoised:
    the same candidates' times are converted on every request)."""
    from datetime import timezone

    hit = _EPOCHS.get(d)
    if hit is None:
        hit = _EPOCHS[d] = (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp()
        if len(_EPOCHS) > 500_000:
            _EPOCHS.clear()
    return hit


_HEAD_REASONS = {"watch": "likely to be watched through", "like": "people who watch this like it",
                 "share": "often shared", "remix": "often remixed"}


@dataclass
class RankedItem:
    video_id: str
    creator_id: str
    score: float
    fresh: bool
    reasons: list[str] | None = None  # built for served items only (see ``why``)
    why: tuple | None = None  # (_Why, candidate index): what :func:`_reasons` needs, read when served


@dataclass
class _Why:
    """What the reasons of one request's items are built from; only the served items' are built."""

    cands: object
    scored: object
    fresh: np.ndarray
    now_s: float
    terms: list
    weights: dict
    personalized: bool

    def reasons(self, j: int) -> list[str]:
        c, s = self.cands, self.scored
        return _reasons(c.tags[j], bool(self.fresh[j]), (self.now_s - c.published_s[j]) / 3600, s.probs[j], self.weights,
                        float(s.taste[j]), float(s.steer[j]), self.terms, c.emb[j], self.personalized)


@dataclass
class _Ordered:
    """A request's ordering as it waits for its cursor: parallel lists of plain values (a few
    objects for the collector to walk, where RankedItems would be hundreds per request; with
    thousands of requests kept, the collector's full passes stalled a replica for 100-190 ms)."""

    video_ids: list[str]
    creator_ids: list[str]
    scores: list[float]
    fresh: list[bool]
    why: _Why | None
    index: list[int]  # each item's candidate index in ``why``

    @classmethod
    def of(cls, cands, scored, picked: list[int], why: _Why) -> "_Ordered":
        """The candidates at indices ``picked``, in that order."""
        return cls([cands.ids[j] for j in picked], [cands.rows[j].creator_id for j in picked],
                   scored.scores[picked].tolist(), why.fresh[picked].tolist(), why, picked)

    def __len__(self) -> int:
        return len(self.video_ids)

    def items(self, lo: int, hi: int) -> list[RankedItem]:
        return [RankedItem(self.video_ids[k], self.creator_ids[k], self.scores[k], self.fresh[k], why=(self.why, self.index[k]))
                for k in range(lo, min(hi, len(self.video_ids)))]


@dataclass
class RankedPage:
    items: list[tuple[sa.Row, RankedItem]]
    request_id: str
    position: int  # of the first item
    next_cursor: str | None
    withheld: int
    candidates: int
    model_version: str | None


class _RightsCache:
    """Serve-time rights decisions.

    Every live video was screened against the registry when it was made, and the re-screen takes
    down what a changed registry blocks. So while the registry is the one the last finished
    re-screen used, every live video is known to pass and nothing is screened at serve time. In the
    window between a registry change and the re-screen, each candidate is screened against the
    registry as it is now, once per registry version (cached).
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._d: OrderedDict[tuple, bool] = OrderedDict()
        self._digests: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def _rescreened(self, conn: sa.Connection, settings: Settings) -> tuple[bool, tuple]:
        from kinora.stores.rights import registry_state
        from kinora.trust.rights import registry_digest

        version, last = registry_state(conn=conn)
        digest = self._digests.get(version)
        if digest is None:
            digest = registry_digest(conn=conn, settings=settings.rights)
            self._digests = {version: digest}
        return last is not None and last == digest, version

    def allowed(self, conn: sa.Connection, settings: Settings, rows: list) -> dict[str, bool] | None:
        """Each row's decision, or None when every live video is known to pass (nothing to screen)."""
        from kinora.trust.rights import screen_items

        rescreened, version = self._rescreened(conn, settings)
        if rescreened:
            return None
        out, todo = {}, []
        with self._lock:
            for r in rows:
                hit = self._d.get((version, r.id))
                if hit is None:
                    todo.append(r)
                else:
                    out[r.id] = hit
        if todo:
            decisions = screen_items(conn=conn, items=[(r.prompt, r.creator_id) for r in todo], settings=settings.rights,
                                     max_cameos=settings.consent.max_cameos_per_video)
            with self._lock:
                for r, d in zip(todo, decisions):
                    out[r.id] = self._d[(version, r.id)] = d.allowed
                while len(self._d) > self.capacity:
                    self._d.popitem(last=False)
        return out


RIGHTS = _RightsCache()


def _servable(conn: sa.Connection, settings: Settings, rows: list) -> dict[str, bool] | None:
    """Consent and rights, as they stand now, for each row (rows of :data:`catalog.RANK_COLUMNS`);
    None when every row is servable without a look (no cameo among them, and the registry is the
    one the last re-screen used): the common case, and the feed then checks no row one by one."""
    with_cameos = [r.id for r in rows if r.has_cameos]
    rights = RIGHTS.allowed(conn, settings, rows)
    if not with_cameos and rights is None:
        return None
    consent = {}
    if with_cameos:
        full = catalog.live_among(conn=conn, ids=with_cameos)
        consent = {k: v.holds for k, v in check_videos(conn=conn, videos=full,
                                                        max_cameos=settings.consent.max_cameos_per_video).items()}
    return {r.id: consent.get(r.id, not r.has_cameos) and (rights is None or rights[r.id]) for r in rows}


class _Pool:
    """The candidates every user shares (the freshest and the most popular), prepared as arrays and
    kept per replica: reading and preparing them is most of a request's work. A pool older than
    ``ranking.candidate_pool_s`` is rebuilt by a background thread while requests go on with the old
    one (a request waits only when there is no pool for the current ranker version). Per-user
    sources (followed creators, friends' cameos) are always read fresh, and the served items are
    re-read (live, consent, rights) at every request."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._at = 0.0
        self._cands = None
        self._sig: tuple | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def _build(self, engine: sa.Engine, settings: Settings, ranker, bundle, key: tuple) -> None:
        import time as _time

        n = settings.ranking.feed_candidates
        rows: dict[str, sa.Row] = {}
        tags: dict[str, set[str]] = {}
        with engine.connect() as conn:
            for items, tag in ((catalog.feed_candidates(conn=conn, limit=max(1, n // 2), columns=catalog.RANK_COLUMNS),
                                "recent"),
                               (catalog.live_among(conn=conn, ids=ranker.popular_ids(bundle, n // 2),
                                                   columns=catalog.RANK_COLUMNS), "popular")):
                for r in items:
                    rows.setdefault(r.id, r)
                    tags.setdefault(r.id, set()).add(tag)
        # Most refreshes find the same videos (nothing published or taken down in between): keep
        # the prepared arrays then, so a refresh costs its two queries and not a re-preparation.
        sig = (key, tuple((r.id, r.published_at, bool(r.has_cameos), r.creator_id, r.prompt) for r in rows.values()),
               tuple(frozenset(t) for t in tags.values()))
        with self._lock:
            same = sig == self._sig and self._cands is not None
        cands = self._cands if same else ranker.prepare(bundle, list(rows.values()), [frozenset(tags[k]) for k in rows])
        with self._lock:
            self._key, self._at, self._cands, self._sig = key, _time.monotonic(), cands, sig

    def _refresh(self, *args) -> None:
        try:
            self._build(*args)
        except Exception:  # noqa: BLE001 - keep serving the previous pool; the next request tries again
            import logging

            logging.getLogger(__name__).exception("feed: candidate pool refresh failed")
        finally:
            with self._lock:
                self._refreshing = False

    def get(self, conn, settings: Settings, ranker, bundle):
        import time as _time

        key = (id(ranker), bundle.version if bundle else None, settings.ranking.feed_candidates)
        with self._lock:
            current = self._key == key and self._cands is not None
            stale = _time.monotonic() - self._at >= settings.ranking.candidate_pool_s
            if current and not stale:
                return self._cands
            if current and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, args=(conn.engine, settings, ranker, bundle, key),
                                 name="feed-pool", daemon=True).start()
            if current:
                return self._cands
        self._build(conn.engine, settings, ranker, bundle, key)
        return self._cands


POOL = _Pool()


def _candidates(conn, settings: Settings, ranker, bundle, user_id: str | None, personalized: bool, hidden: set[str]):
    """The prepared candidates (shared pool plus the user's own sources), minus what the user hid."""
    from kinora.ranking.serving import Candidates

    shared = POOL.get(conn, settings, ranker, bundle)
    cands = shared
    if personalized and user_id:
        followees, friends = catalog.followees_and_friends(conn=conn, user_id=user_id)
        personal: dict[str, sa.Row] = {}
        personal_tags: dict[str, set[str]] = {}
        for items, tag in ((catalog.live_by_creators(conn=conn, creator_ids=followees, limit=100, columns=catalog.RANK_COLUMNS),
                            "followed creator"),
                           (catalog.live_with_cameos_of(conn=conn, owner_ids=friends, limit=100, columns=catalog.RANK_COLUMNS),
                            "friend's cameo")):
            for r in items:
                personal.setdefault(r.id, r)
                personal_tags.setdefault(r.id, set()).add(tag)
        if personal:
            index = {vid: i for i, vid in enumerate(shared.ids)}
            in_shared = [k for k in personal if k in index]
            if in_shared:  # the same video proposed by a personal source too: say so
                tags = list(shared.tags)
                for k in in_shared:
                    tags[index[k]] = tags[index[k]] | personal_tags[k]
                cands = Candidates(shared.rows, shared.ids, tags, shared.published_s, shared.has_cameos, shared.emb,
                                   shared.v, shared.c, shared.text, shared.duration)
            new = [k for k in personal if k not in index]
            if new:
                cands = Candidates.concat(cands, ranker.prepare(bundle, [personal[k] for k in new],
                                                                [frozenset(personal_tags[k]) for k in new]))
    if hidden:
        keep = np.array([vid not in hidden for vid in cands.ids], bool)
        if not keep.all():
            cands = cands.take(np.nonzero(keep)[0])
    return cands


def _reasons(tags: set[str], fresh: bool, age_h: float, probs, weights, taste: float, steer_shift: float,
             steer_terms, emb, personalized: bool) -> list[str]:
    out = []
    if "followed creator" in tags:
        out.append("from a creator you follow")
    if "friend's cameo" in tags:
        out.append("a friend's cameo")
    if steer_shift > 0.05 and steer_terms:
        best = max(steer_terms, key=lambda t: t[0] * float(emb @ t[2]))
        if best[0] > 0:
            out.append(f"you asked for more {best[1]}")
    if personalized and taste > 0.5:
        out.append("matches what you watch")
    if fresh:
        out.append(f"fresh: published {age_h:.0f} h ago")
    if probs is not None and probs.any():
        contrib = {h: probs[i] * weights.get(h, 0.0) for i, h in enumerate(("watch", "like", "share", "remix"))}
        out.append(_HEAD_REASONS[max(contrib, key=contrib.get)])
    if "popular" in tags:
        out.append("popular now")
    return out[:3] or ["recent"]


def _assemble(creators: list[str], fresh: list[bool], limit: int, keep: int, fresh_share: float,
              max_run: int) -> list[int]:
    """Order the servable items (given best first as their creators and freshness) under the rules:
    at most ``max_run`` in a row from one creator, and at least ``ceil(fresh_share * limit)`` fresh
    items in every page of ``limit``. Returns positions into the input, in serving order."""
    quota = math.ceil(fresh_share * limit)
    n = len(creators)
    used = [False] * n
    out: list[int] = []
    fresh_in_page = 0
    start = 0  # the first unused item: picks are almost always near it
    while len(out) < keep:
        while start < n and used[start]:
            start += 1
        pos = len(out) % limit
        if pos == 0:
            fresh_in_page = 0
        must_fresh = quota - fresh_in_page >= limit - pos and fresh_in_page < quota
        last = creators[out[-1]] if out else None
        run_creator = last if len(out) >= max_run and all(creators[o] == last for o in out[-max_run:]) else None
        pick = None
        for strict_fresh in ((True, False) if must_fresh else (False,)):
            pick = next((k for k in range(start, n) if not used[k] and creators[k] != run_creator
                         and (fresh[k] or not strict_fresh)), None)
            if pick is not None:
                break
        if pick is None:
            break  # only one creator left, or nothing left
        used[pick] = True
        out.append(pick)
        fresh_in_page += fresh[pick]
    return out


def ranked_feed(*, conn: sa.Connection, settings: Settings, ranker, lists, user_id: str, limit: int,
                cursor: str | None = None, personalized: bool = True, steer: str | None = None) -> RankedPage:
    """One page of the ranked feed for ``user_id`` (see the block comment above)."""
    from datetime import timezone

    r = settings.ranking
    limit = max(1, min(limit, settings.consent.feed_page_max))
    if cursor:
        request_id, _, offset_s = cursor.rpartition(".")
        cached = lists.get(request_id)
        if cached is None or not offset_s.isdigit():
            raise ValueError("cursor expired or not one this API returned; start again without it")
        offset, model_version, ordered, n_candidates = int(offset_s), cached[0], cached[1], cached[2]
    else:
        request_id, offset = new_id("req"), 0
        bundle = ranker.bundle
        now = datetime.now(timezone.utc)
        hidden = catalog.hidden_by(conn=conn, user_id=user_id)
        cands = _candidates(conn, settings, ranker, bundle, user_id, personalized, hidden)
        n_candidates = len(cands.ids)
        model_version = bundle.version if bundle else None
        if n_candidates:
            now_s = now.timestamp()
            scored = ranker.score(bundle, cands, user_id=user_id, now_s=now_s, personalized=personalized, steer=steer)
            terms = ranker.steer_terms(steer) if steer else []
            order = np.argsort(-scored.scores, kind="stable")
            keep = max(limit * 5, 100)
            fresh = cands.published_s >= now_s - r.fresh_hours * 3600
            # rules need servable items: check consent and rights on the best-ranked first, in rounds
            servable: list[int] = []  # candidate indices, best first
            fresh_ok = 0
            quota = math.ceil(r.fresh_share * keep / limit) * limit
            fresh_l = fresh.tolist()
            i = 0
            while i < len(order) and (len(servable) < keep + limit or fresh_ok < quota):
                idx = order[i:i + 2 * keep].tolist()
                ok = _servable(conn, settings, [cands.rows[j] for j in idx])
                good = idx if ok is None else [j for j in idx if ok[cands.ids[j]]]
                servable += good
                fresh_ok += sum(fresh_l[j] for j in good)
                i += 2 * keep
            picked = [servable[k] for k in _assemble([cands.rows[j].creator_id for j in servable],
                                                     [fresh_l[j] for j in servable], limit, keep, r.fresh_share,
                                                     r.max_same_creator_run)]
            ordered = _Ordered.of(cands, scored, picked, _Why(cands, scored, fresh, now_s, terms, r.head_weights, personalized))
        else:
            ordered = _Ordered([], [], [], [], None, [])
        lists.put(request_id, (model_version, ordered, n_candidates))
    page_items = ordered.items(offset, offset + limit)
    withheld = 0
    if cursor and page_items:  # consent or rights may have changed since the first page
        rows_now = catalog.live_among(conn=conn, ids=[it.video_id for it in page_items], columns=catalog.RANK_COLUMNS)
        ok = _servable(conn, settings, rows_now)
        live = {x.id for x in rows_now if ok is None or ok[x.id]}
        withheld = sum(1 for it in page_items if it.video_id not in live)
        page_items = [it for it in page_items if it.video_id in live]
    full = catalog.videos_with_creators(conn=conn, ids=[it.video_id for it in page_items])
    items = []
    for it in page_items:
        row = full.get(it.video_id)
        if row is None or row.published_at is None or row.unpublished_at is not None:  # taken down since the pool was read
            withheld += 1
            continue
        if it.reasons is None:
            it.reasons = it.why[0].reasons(it.why[1])
        items.append((row, it))
    nxt = offset + limit
    return RankedPage(items=items, request_id=request_id, position=offset,
                      next_cursor=f"{request_id}.{nxt}" if nxt < len(ordered) else None, withheld=withheld,
                      candidates=n_candidates, model_version=model_version)
