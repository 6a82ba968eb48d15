"""Consent checks: may this requester put these cameos in this video, right now?

One rule, applied at every gate: API submission, the campaign flow before generation, again just
before publishing (a revocation during generation blocks it), at every feed serve, and in the
``consent_sweep`` flow. A cameo permits a use when it exists, is verified (a trusted attestation),
is neither revoked nor deleted, its permission level admits the requester (owner; ``everyone``;
``approved`` list; ``mutuals``: both follow each other), and the prompt breaks none of its owner's
free-text restrictions. A published video also needs each use to be live: not removed by the
owner and, for cameos whose owner approves each video, approved.

Checks run in batches (:func:`check_many`): one query per table for the whole batch, then pure
Python, so a feed page or a sweep chunk costs a handful of queries, not one per video.
Every allowed check names the ledger entries it relied on (``GrantRef.ledger_seq``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from kinora.stores import cameos as cameo_store
from kinora.stores import users as user_store
from kinora.trust import ledger
from kinora.trust.restrictions import screen


# Plain slotted dataclasses, not pydantic models: a batch builds one decision per request (20,000
# a second and more), and these are only ever built here from typed rows.
@dataclass(frozen=True, slots=True)
class GrantRef:
    """The ledger grant a use relies on."""

    cameo_id: str
    cameo_handle: str
    owner_id: str
    permission: str
    ledger_seq: int
    require_approval: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    allowed: bool
    reason: str
    grants: tuple[GrantRef, ...] = ()

    def digest(self) -> str:
        """SHA-256 of the grants relied on: what the C2PA assertion carries instead of names."""
        payload = json.dumps([{k: v for k, v in g.as_dict().items() if k != "require_approval"} for g in self.grants],
                             sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()

    def needs_approval(self, requester_id: str) -> list[GrantRef]:
        """Grants whose owner approves each video (never for the owner's own videos)."""
        return [g for g in self.grants if g.require_approval and g.owner_id != requester_id]


@dataclass(frozen=True)
class ConsentQuery:
    requester_id: str
    cameo_handles: list[str]
    prompt: str = ""
    max_cameos: int = 2


@dataclass
class _Context:
    """Everything one batch of checks needs, fetched with one query per table."""

    cameos: dict[str, sa.Row]
    approved: set[tuple[str, str]]
    follows: set[tuple[str, str]]
    grant_seqs: dict[str, int]
    handles: dict[str, str] = field(default_factory=dict)  # user id -> handle, for messages


def _load(conn: sa.Connection, queries: list[ConsentQuery], cameo_rows: dict[str, sa.Row] | None = None) -> _Context:
    if cameo_rows is None:
        handles = [h.lstrip("@") for q in queries for h in q.cameo_handles]
        cameo_rows = cameo_store.cameos_by_handles(conn=conn, handles=handles, consent_view=True)
    approval_pairs, follow_pairs = [], []
    for q in queries:
        for h in q.cameo_handles:
            c = cameo_rows.get(h.lstrip("@"))
            if c is None or c.owner_id == q.requester_id:
                continue
            if c.permission == "approved":
                approval_pairs.append((c.id, q.requester_id))
            elif c.permission == "mutuals":
                follow_pairs += [(q.requester_id, c.owner_id), (c.owner_id, q.requester_id)]
    return _Context(
        cameos=cameo_rows,
        approved=cameo_store.approved_pairs(conn=conn, pairs=approval_pairs) if approval_pairs else set(),
        follows=user_store.follow_pairs(conn=conn, pairs=follow_pairs) if follow_pairs else set(),
        grant_seqs=cameo_store.latest_grant_seqs(conn=conn, cameo_ids=[c.id for c in cameo_rows.values()]),
    )


def check_many(*, conn: sa.Connection, queries: list[ConsentQuery]) -> list[ConsentDecision]:
    """Decide each query; the first refusal within a query wins."""
    ctx = _load(conn, queries)
    return [_decide(ctx, q) for q in queries]


def check_consent(
    *, conn: sa.Connection, requester_id: str, cameo_handles: list[str], max_cameos: int, prompt: str = ""
) -> ConsentDecision:
    """Decide whether ``requester_id`` may use every cameo in ``cameo_handles`` for ``prompt``."""
    return check_many(conn=conn, queries=[ConsentQuery(requester_id, list(cameo_handles), prompt, max_cameos)])[0]


def _decide(ctx: _Context, q: ConsentQuery) -> ConsentDecision:
    handles = list(dict.fromkeys(h.lstrip("@") for h in q.cameo_handles))
    if len(handles) > q.max_cameos:
        return ConsentDecision(allowed=False, reason=f"{len(handles)} cameos requested; at most {q.max_cameos} per video")
    grants: list[GrantRef] = []
    for handle in handles:
        cameo = ctx.cameos.get(handle)
        refusal = _refusal(ctx, cameo, handle, q)
        if refusal:
            return ConsentDecision(allowed=False, reason=refusal)
        seq = ctx.grant_seqs.get(cameo.id)
        if seq is None:
            return ConsentDecision(allowed=False, reason=f"cameo @{handle} has no consent grant on the ledger")
        grants.append(GrantRef(cameo_id=cameo.id, cameo_handle=handle, owner_id=cameo.owner_id, permission=cameo.permission,
                               ledger_seq=seq, require_approval=bool(cameo.require_approval)))
    reason = "no cameos used" if not grants else "every cameo permits this requester"
    return ConsentDecision(allowed=True, reason=reason, grants=tuple(grants))


def _refusal(ctx: _Context, cameo: sa.Row | None, handle: str, q: ConsentQuery) -> str | None:
    if cameo is None:
        return f"unknown cameo @{handle}"
    if cameo.deleted_at is not None:
        return f"cameo @{handle} was deleted by its owner"
    if cameo.revoked_at is not None:
        return f"cameo @{handle} was revoked by its owner"
    if not cameo.verified:
        return f"cameo @{handle} is not verified"
    if q.requester_id != cameo.owner_id and cameo.permission != "everyone":
        if cameo.permission == "only_me":
            return f"cameo @{handle} may be used by its owner only (only_me)"
        if cameo.permission == "approved" and (cameo.id, q.requester_id) not in ctx.approved:
            return f"cameo @{handle} is limited to people its owner approved, and the requester is not one of them"
        if cameo.permission == "mutuals" and not (
            (q.requester_id, cameo.owner_id) in ctx.follows and (cameo.owner_id, q.requester_id) in ctx.follows
        ):
            return f"cameo @{handle} is limited to its owner's mutual followers, and the requester is not one"
        if cameo.permission not in ("approved", "mutuals"):
            return f"cameo @{handle} has an unknown permission level {cameo.permission!r}"
    hit = screen(q.prompt, cameo_store.restrictions_of(cameo)) if cameo.restrictions not in ("[]", None) else None
    if hit is not None:
        return f"cameo @{handle}'s owner restricts its use ({hit.restriction!r}); the prompt mentions {hit.matched!r}"
    return None


# -- published videos --------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoConsent:
    video_id: str
    holds: bool
    reason: str
    cameo_id: str | None = None  # the cameo whose consent failed


def check_videos(*, conn: sa.Connection, videos: list[sa.Row], max_cameos: int) -> dict[str, VideoConsent]:
    """Does consent still hold for each published video (its creator, its cameos, its prompt, its uses)?"""
    with_cameos = [v for v in videos if v.cameo_ids]
    out = {v.id: VideoConsent(v.id, True, "uses no cameo") for v in videos if not v.cameo_ids}
    if not with_cameos:
        return out
    rows = cameo_store.cameos_by_ids(conn=conn, ids=[c for v in with_cameos for c in v.cameo_ids],
                                     consent_view=True)
    by_handle = {r.handle: r for r in rows.values()}
    uses: dict[tuple[str, str], sa.Row] = {
        (u.video_id, u.cameo_id): u for u in cameo_store.uses_of_videos(conn=conn, video_ids=[v.id for v in with_cameos])
    }
    queries = [
        ConsentQuery(v.creator_id, [rows[c].handle if c in rows else f"<missing {c}>" for c in v.cameo_ids], v.prompt,
                     max(max_cameos, len(v.cameo_ids)))
        for v in with_cameos
    ]
    ctx = _load(conn, queries, cameo_rows=by_handle)
    for v, q in zip(with_cameos, queries):
        decision = _decide(ctx, q)
        if not decision.allowed:
            failed = next((c for c in v.cameo_ids if c in rows and f"@{rows[c].handle}" in decision.reason), None)
            out[v.id] = VideoConsent(v.id, False, decision.reason, failed)
            continue
        dead = next(((c, uses.get((v.id, c))) for c in v.cameo_ids
                     if uses.get((v.id, c)) is None or uses[(v.id, c)].status != "active"), None)
        if dead is not None:
            c, use = dead
            why = "has no recorded use" if use is None else f"use is {use.status}"
            out[v.id] = VideoConsent(v.id, False, f"cameo @{rows[c].handle} {why}", c)
        else:
            out[v.id] = VideoConsent(v.id, True, "every cameo still permits this video")
    return out


def record_use(
    *, conn: sa.Connection, key: "ledger.LedgerKey", decision: ConsentDecision, requester_id: str, video_id: str,
    job_id: str,
) -> list[str]:
    """Record the video's use of each cameo: a ledger 'use' entry and a use row (pending where the
    owner approves each video). Returns the handles awaiting approval."""
    pending = {g.cameo_id for g in decision.needs_approval(requester_id)}
    for grant in decision.grants:
        ledger.append(conn=conn, key=key, cameo_id=grant.cameo_id, actor_id=requester_id, action="use",
                      detail={"video_id": video_id, "grant_seq": grant.ledger_seq,
                              "status": "pending" if grant.cameo_id in pending else "active"})
    cameo_store.insert_uses(conn=conn, rows=[
        dict(video_id=video_id, cameo_id=g.cameo_id, job_id=job_id, requester_id=requester_id,
             status="pending" if g.cameo_id in pending else "active")
        for g in decision.grants
    ])
    return [g.cameo_handle for g in decision.grants if g.cameo_id in pending]
