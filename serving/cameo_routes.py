"""Cameo endpoints on the ingress: register with a liveness challenge, set permissions and
restrictions, approve users, approve or remove each use, revoke, delete; and the follow graph
that ``mutuals`` reads. Same API keys as the rest; the owner is the key's user.

The rules live in :mod:`kinora.trust.cameos`; this module maps HTTP to them and their
:class:`~kinora.trust.cameos.CameoError` statuses to JSON errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kinora import auth
from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import users as user_store
from kinora.stores.bundle import Stores
from kinora.trust import cameos as service
from serving.uploads import read_limited_body

Permission = Literal["only_me", "approved", "mutuals", "everyone"]


class ChallengeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=2, max_length=33, description="The cameo's handle, e.g. 'alice'.")
    kind: Literal["person", "pet", "object", "character"] = "person"


class ChallengeOut(BaseModel):
    id: str
    handle: str
    digits: str = Field(description="Read these digits aloud in the recording.")
    head_turns: list[str] = Field(description="Turn the head in this order.")
    expires_at: datetime
    upload_url: str


class CameoOut(BaseModel):
    handle: str
    kind: str
    owner: str
    permission: str
    restrictions: list[str]
    require_approval: bool
    verified: bool
    verifier: str | None
    not_checked: list[str] = Field(default_factory=list, description="What the verifier says it did not check.")
    approved: list[str]
    revoked_at: datetime | None
    created_at: datetime


class CameoPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permission: Permission | None = None
    restrictions: list[str] | None = Field(None, max_length=service.MAX_RESTRICTIONS)
    require_approval: bool | None = None


class ApprovedSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(max_length=1000, description="Handles allowed to use an 'approved' cameo (the whole list).")


class UseOut(BaseModel):
    video_id: str
    job_id: str
    requester: str
    use_status: str
    video_state: str
    prompt: str | None
    reason: str | None
    created_at: datetime


class ErrorOut(BaseModel):
    detail: str


def _errors(*codes: int) -> dict:
    text = {401: "No or invalid API key.", 403: "Not the owner, the key lacks the scope, or the attestation is untrusted.",
            404: "No such cameo, challenge or use.", 409: "Taken handle, used challenge, or a state that forbids it.",
            410: "The challenge expired.", 413: "The recording is too large.",
            422: "A field breaks a rule, or the verifier refused the recording."}
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


def cameo_router(*, settings: Settings, stores: Stores, scoped: Callable[[str], Callable]) -> APIRouter:
    router = APIRouter(tags=["cameos"])

    def run(fn):
        try:
            return fn()
        except service.CameoError as exc:
            raise HTTPException(status_code=exc.status, detail=exc.message) from None

    def cameo_out(conn: sa.Connection, cameo: sa.Row) -> CameoOut:
        owner = user_store.get_user(conn=conn, user_id=cameo.owner_id)
        approved = user_store.users_by_ids(conn=conn, ids=cameo_store.approved_users(conn=conn, cameo_id=cameo.id))
        att = cameo.attestation or {}
        return CameoOut(handle=cameo.handle, kind=cameo.kind, owner=owner.handle if owner else cameo.owner_id,
                        permission=cameo.permission, restrictions=list(cameo.restrictions or []),
                        require_approval=bool(cameo.require_approval), verified=bool(cameo.verified),
                        verifier=att.get("verifier"), not_checked=att.get("not_checked", []),
                        approved=sorted(u.handle for u in approved.values()), revoked_at=cameo.revoked_at,
                        created_at=cameo.created_at)

    @router.post("/v1/cameos/challenges", status_code=201, response_model=ChallengeOut,
                 responses=_errors(401, 403, 409, 422))
    async def create_challenge(body: ChallengeCreate, who: auth.Principal = Depends(scoped("cameos:write"))) -> ChallengeOut:
        """Start registering a cameo: a single-use liveness challenge (digits to read, head turns), valid for minutes."""
        def go() -> ChallengeOut:
            with stores.engine.begin() as conn:
                c = service.start_challenge(conn=conn, settings=settings, user_id=who.user_id, handle=body.handle,
                                            kind=body.kind)
            return ChallengeOut(id=c.id, handle=c.handle, digits=c.digits, head_turns=c.head_turns,
                                expires_at=c.expires_at, upload_url=f"/v1/cameos/challenges/{c.id}/recording")
        return await asyncio.to_thread(run, go)

    @router.post("/v1/cameos/challenges/{challenge_id}/recording", status_code=201, response_model=CameoOut,
                 responses=_errors(401, 403, 404, 409, 410, 413, 422),
                 openapi_extra={"requestBody": {"required": True, "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload_recording(
        challenge_id: str, request: Request,
        permission: Permission = Query("only_me", description="Who may use the cameo once verified."),
        restriction: list[str] = Query([], description="Free-text restrictions (repeat the parameter)."),
        who: auth.Principal = Depends(scoped("cameos:write")),
    ) -> CameoOut:
        """Upload the challenge recording (raw video bytes). The verifier attests it; a trusted, passing
        attestation creates the cameo, its encrypted reference media and its signed grant."""
        recording = await read_limited_body(request, settings.consent.recording_max_bytes, "recording")

        def go() -> CameoOut:
            cameo = service.register(engine=stores.engine, settings=settings, media=stores.media, user_id=who.user_id,
                                     challenge_id=challenge_id, recording=recording, permission=permission,
                                     restrictions=restriction)
            with stores.engine.connect() as conn:
                return cameo_out(conn, cameo)
        return await asyncio.to_thread(run, go)

    @router.get("/v1/cameos/{handle}", response_model=CameoOut, responses=_errors(401, 403, 404))
    async def get_cameo(handle: str, who: auth.Principal = Depends(scoped("cameos:read"))) -> CameoOut:
        """The owner's view of a cameo: permission, restrictions, approvals, verification."""
        def go() -> CameoOut:
            with stores.engine.connect() as conn:
                return cameo_out(conn, service.owned(conn=conn, owner_id=who.user_id, handle=handle))
        return await asyncio.to_thread(run, go)

    @router.patch("/v1/cameos/{handle}", response_model=CameoOut, responses=_errors(401, 403, 404, 409, 422))
    async def patch_cameo(handle: str, body: CameoPatch, who: auth.Principal = Depends(scoped("cameos:write"))) -> CameoOut:
        """Change who may use the cameo, its restrictions, or 'approve each video before publish'."""
        def go() -> CameoOut:
            with stores.engine.begin() as conn:
                cameo = service.update(conn=conn, settings=settings, owner_id=who.user_id, handle=handle,
                                       permission=body.permission, restrictions=body.restrictions,
                                       require_approval=body.require_approval)
                return cameo_out(conn, cameo)
        return await asyncio.to_thread(run, go)

    @router.put("/v1/cameos/{handle}/approved", response_model=CameoOut, responses=_errors(401, 403, 404, 422))
    async def put_approved(handle: str, body: ApprovedSet, who: auth.Principal = Depends(scoped("cameos:write"))) -> CameoOut:
        """Set the list of people who may use an 'approved' cameo (replaces the list)."""
        def go() -> CameoOut:
            with stores.engine.begin() as conn:
                service.set_approved_users(conn=conn, settings=settings, owner_id=who.user_id, handle=handle,
                                           user_handles=body.users)
                return cameo_out(conn, service.owned(conn=conn, owner_id=who.user_id, handle=handle))
        return await asyncio.to_thread(run, go)

    @router.post("/v1/cameos/{handle}/revoke", responses=_errors(401, 403, 404))
    async def revoke(handle: str, who: auth.Principal = Depends(scoped("cameos:write"))) -> dict:
        """Revoke consent: no new use, and every video using the cameo is unpublished now."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                n = service.revoke(conn=conn, settings=settings, owner_id=who.user_id, handle=handle)
            return {"handle": handle.lstrip("@"), "revoked": True, "videos_withdrawn": n}
        return await asyncio.to_thread(run, go)

    @router.delete("/v1/cameos/{handle}", responses=_errors(401, 403, 404))
    async def delete(handle: str, who: auth.Principal = Depends(scoped("cameos:write"))) -> dict:
        """Delete the cameo: revoke, unpublish its videos, erase its reference image and voice sample."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                n = service.delete(conn=conn, settings=settings, media=stores.media, owner_id=who.user_id, handle=handle)
            return {"handle": handle.lstrip("@"), "deleted": True, "videos_withdrawn": n}
        return await asyncio.to_thread(run, go)

    @router.get("/v1/cameos/{handle}/uses", response_model=list[UseOut], responses=_errors(401, 403, 404))
    async def list_uses(handle: str, who: auth.Principal = Depends(scoped("cameos:read"))) -> list[UseOut]:
        """Every video and draft that uses the cameo, with its state."""
        def go() -> list[UseOut]:
            with stores.engine.connect() as conn:
                return [UseOut(**u) for u in service.list_uses(conn=conn, owner_id=who.user_id, handle=handle)]
        return await asyncio.to_thread(run, go)

    @router.delete("/v1/cameos/{handle}/uses/{video_id}", responses=_errors(401, 403, 404))
    async def remove_use(handle: str, video_id: str, who: auth.Principal = Depends(scoped("cameos:write"))) -> dict:
        """Remove a video or draft that uses the cameo (it is unpublished)."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                return service.remove_use(conn=conn, settings=settings, owner_id=who.user_id, handle=handle, video_id=video_id)
        return await asyncio.to_thread(run, go)

    @router.post("/v1/cameos/{handle}/uses/{video_id}/approve", responses=_errors(401, 403, 404, 409))
    async def approve_use(handle: str, video_id: str, who: auth.Principal = Depends(scoped("cameos:write"))) -> dict:
        """Approve a draft that uses the cameo; it publishes when every owner approved and consent holds."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                return service.approve_use(conn=conn, settings=settings, owner_id=who.user_id, handle=handle, video_id=video_id)
        return await asyncio.to_thread(run, go)

    @router.put("/v1/follows/{handle}", responses=_errors(401, 403, 404), tags=["follows"])
    async def follow(handle: str, who: auth.Principal = Depends(scoped("follows:write"))) -> dict:
        """Follow a user (mutual follows satisfy 'mutuals' cameos)."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                user = user_store.get_user_by_handle(conn=conn, handle=handle)
                if user is None:
                    raise service.CameoError(404, f"unknown user @{handle.lstrip('@')}")
                user_store.add_follow(conn=conn, follower_id=who.user_id, followee_id=user.id)
            return {"following": user.handle}
        return await asyncio.to_thread(run, go)

    @router.delete("/v1/follows/{handle}", responses=_errors(401, 403, 404), tags=["follows"])
    async def unfollow(handle: str, who: auth.Principal = Depends(scoped("follows:write"))) -> dict:
        """Stop following a user; 'mutuals' cameo uses that relied on it lapse at once."""
        def go() -> dict:
            with stores.engine.begin() as conn:
                user = user_store.get_user_by_handle(conn=conn, handle=handle)
                if user is None:
                    raise service.CameoError(404, f"unknown user @{handle.lstrip('@')}")
                removed = user_store.remove_follow(conn=conn, follower_id=who.user_id, followee_id=user.id)
            return {"unfollowed": user.handle, "was_following": removed}
        return await asyncio.to_thread(run, go)

    return router
