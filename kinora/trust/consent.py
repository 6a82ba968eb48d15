"""Consent checks: may this requester put these cameos in a video, right now?

Checked at submission, again before publish (a revocation during generation blocks
publishing). Every allowed check names the ledger entries it relied on, so a published video
can be traced to the exact grants that permitted it. Issue #4 deepens this (verification
attestations, restrictions screening, the signed hash-chained ledger).
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from kinora.stores import cameos as cameo_store
from kinora.stores import users as user_store


class GrantRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cameo_id: str
    cameo_handle: str
    owner_id: str
    permission: str
    ledger_seq: int


class ConsentDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    reason: str
    grants: list[GrantRef] = []

    def digest(self) -> str:
        """SHA-256 of the grants relied on: what the C2PA assertion carries instead of names."""
        payload = json.dumps([g.model_dump() for g in self.grants], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()


def check_consent(
    *, conn: sa.Connection, requester_id: str, cameo_handles: list[str], max_cameos: int
) -> ConsentDecision:
    """Decide whether ``requester_id`` may use every cameo in ``cameo_handles``; the first refusal wins."""
    handles = [h.lstrip("@") for h in cameo_handles]
    if len(set(handles)) > max_cameos:
        return ConsentDecision(allowed=False, reason=f"{len(set(handles))} cameos requested; at most {max_cameos} per video")
    requester = user_store.get_user(conn=conn, user_id=requester_id)
    requester_name = f"@{requester.handle}" if requester else requester_id
    grants: list[GrantRef] = []
    for handle in dict.fromkeys(handles):
        cameo = cameo_store.get_cameo_by_handle(conn=conn, handle=handle)
        if cameo is None:
            return ConsentDecision(allowed=False, reason=f"unknown cameo @{handle}")
        if cameo.revoked_at is not None:
            return ConsentDecision(allowed=False, reason=f"cameo @{handle} was revoked by its owner")
        if not cameo.verified:
            return ConsentDecision(allowed=False, reason=f"cameo @{handle} is not verified")
        refusal = _permission_refusal(conn=conn, cameo=cameo, requester_id=requester_id)
        if refusal:
            return ConsentDecision(allowed=False, reason=f"cameo @{handle} {refusal}; requester is {requester_name}")
        seq = cameo_store.latest_ledger_seq(conn=conn, cameo_id=cameo.id)
        if seq is None:
            return ConsentDecision(allowed=False, reason=f"cameo @{handle} has no consent grant on the ledger")
        grants.append(
            GrantRef(cameo_id=cameo.id, cameo_handle=handle, owner_id=cameo.owner_id, permission=cameo.permission, ledger_seq=seq)
        )
    reason = "no cameos used" if not grants else "every cameo permits this requester"
    return ConsentDecision(allowed=True, reason=reason, grants=grants)


def _permission_refusal(*, conn: sa.Connection, cameo: sa.Row, requester_id: str) -> str | None:
    if requester_id == cameo.owner_id or cameo.permission == "everyone":
        return None
    if cameo.permission == "only_me":
        return "may be used by its owner only (only_me)"
    if cameo.permission == "approved":
        if cameo_store.is_approved(conn=conn, cameo_id=cameo.id, user_id=requester_id):
            return None
        return "is limited to people its owner approved, and the requester is not one of them"
    if cameo.permission == "mutuals":
        if user_store.are_mutuals(conn=conn, a=requester_id, b=cameo.owner_id):
            return None
        return "is limited to its owner's mutual followers, and the requester is not one"
    return f"has an unknown permission level {cameo.permission!r}"


def record_use(*, conn: sa.Connection, decision: ConsentDecision, requester_id: str, video_id: str) -> None:
    """Append a 'use' entry per cameo so each owner can see every video that uses them."""
    for grant in decision.grants:
        cameo_store.append_ledger(
            conn=conn, cameo_id=grant.cameo_id, actor_id=requester_id, action="use",
            detail={"video_id": video_id, "grant_seq": grant.ledger_seq},
        )
