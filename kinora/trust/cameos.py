"""What a cameo owner can do: register with a liveness challenge, set who may use the cameo and
how, approve users, approve or remove each video that uses it, revoke, delete.

Every change is a signed ledger entry written in the same transaction as the change itself, so
the ledger and the cameo never disagree. Functions raise :class:`CameoError` with the HTTP status
the API answers with; the CLI prints its message.
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Literal

import sqlalchemy as sa

from kinora.ids import new_id
from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import catalog, utcnow
from kinora.stores import users as user_store
from kinora.stores.media import MediaStore
from kinora.trust import ledger
from kinora.trust.keys import MEDIA_KEY_FILE, MediaCipher, load_or_create_aes_key
from kinora.trust.ledger import LedgerKey
from kinora.trust.verifier import (
    HEAD_TURNS,
    Attestation,
    AttestationError,
    ChallengeInfo,
    Verifier,
    check_attestation,
    extract_reference_media,
    load_verifier,
    trusted_keys,
)

Permission = Literal["only_me", "approved", "mutuals", "everyone"]
Kind = Literal["person", "pet", "object", "character"]
PERMISSIONS = ("only_me", "approved", "mutuals", "everyone")
KINDS = ("person", "pet", "object", "character")
MAX_RESTRICTIONS, MAX_RESTRICTION_CHARS = 20, 200


class CameoError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _media_cipher(settings: Settings) -> MediaCipher:
    return MediaCipher(load_or_create_aes_key(settings.consent_key_dir / MEDIA_KEY_FILE))


def _challenge_info(row: sa.Row) -> ChallengeInfo:
    return ChallengeInfo(id=row.id, user_id=row.user_id, handle=row.handle, digits=row.digits,
                         head_turns=list(row.head_turns), expires_at=row.expires_at)


def _aware(ts):
    from datetime import UTC

    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


# -- registration --------------------------------------------------------------------------------
def start_challenge(*, conn: sa.Connection, settings: Settings, user_id: str, handle: str, kind: str) -> ChallengeInfo:
    """Issue a single-use liveness challenge for registering cameo ``handle``."""
    import re

    handle = handle.lstrip("@")
    if not re.fullmatch(r"[a-z0-9_.]{2,32}", handle):
        raise CameoError(422, f"handle {handle!r} must be 2-32 characters of a-z, 0-9, '_' or '.'")
    if kind not in KINDS:
        raise CameoError(422, f"kind {kind!r} must be one of {', '.join(KINDS)}")
    if cameo_store.get_cameo_by_handle(conn=conn, handle=handle) is not None:
        raise CameoError(409, f"cameo handle @{handle} is taken")
    c = settings.consent
    rng = secrets.SystemRandom()
    values = dict(id=new_id("chl"), user_id=user_id, handle=handle, kind=kind,
                  digits="".join(str(rng.randrange(10)) for _ in range(c.challenge_digits)),
                  head_turns=[rng.choice(HEAD_TURNS) for _ in range(c.challenge_head_turns)],
                  expires_at=utcnow() + timedelta(seconds=c.challenge_ttl_s))
    cameo_store.insert_challenge(conn=conn, values=values)
    return _challenge_info(cameo_store.get_challenge(conn=conn, challenge_id=values["id"]))


def register(
    *,
    engine: sa.Engine,
    settings: Settings,
    media: MediaStore,
    user_id: str,
    challenge_id: str,
    recording: bytes,
    verifier: Verifier | None = None,
    permission: str = "only_me",
    restrictions: list[str] | None = None,
) -> sa.Row:
    """Verify ``recording`` against the challenge and, if a trusted attestation says it passes, create
    the cameo with its encrypted reference media and a signed 'grant' ledger entry.

    All or nothing: a refusal at any step leaves no cameo, no ledger entry, no media file, and the
    challenge unused unless the refusal is about the challenge itself.
    """
    with engine.connect() as conn:
        row = cameo_store.get_challenge(conn=conn, challenge_id=challenge_id)
    attestation = verify_recording(settings=settings, challenge_row=row, user_id=user_id, challenge_id=challenge_id,
                                   recording=recording, verifier=verifier)
    with engine.begin() as conn:
        return create_verified(conn=conn, settings=settings, media=media, challenge_row=row, attestation=attestation,
                               recording=recording, permission=permission, restrictions=restrictions)


def verify_recording(
    *, settings: Settings, challenge_row: sa.Row | None, user_id: str, challenge_id: str, recording: bytes,
    verifier: Verifier | None = None,
) -> Attestation:
    """Check the challenge is this user's, unused and unexpired; have the verifier attest the recording; check the attestation."""
    row = challenge_row
    if len(recording) > settings.consent.recording_max_bytes:
        raise CameoError(413, f"the recording is {len(recording)} bytes; at most {settings.consent.recording_max_bytes}")
    if row is None or row.user_id != user_id:
        raise CameoError(404, f"no challenge with id {challenge_id} for this user")
    if row.used_at is not None:
        raise CameoError(409, f"challenge {challenge_id} was already used (each challenge is single use)")
    if _aware(row.expires_at) <= utcnow():
        raise CameoError(410, f"challenge {challenge_id} expired at {_aware(row.expires_at).isoformat()}; start a new one")
    challenge = _challenge_info(row)
    attestation = (verifier or load_verifier(settings)).verify(challenge, recording)
    try:
        check_attestation(attestation, challenge=challenge, recording=recording, trusted=trusted_keys(settings))
    except AttestationError as exc:
        status = 422 if str(exc).startswith("the verifier refused") else 403
        raise CameoError(status, str(exc)) from None
    return attestation


def create_verified(
    *, conn: sa.Connection, settings: Settings, media: MediaStore | None, challenge_row: sa.Row, attestation: Attestation,
    recording: bytes, permission: str = "only_me", restrictions: list[str] | None = None, cameo_id: str | None = None,
    approved: list[str] | None = None,
) -> sa.Row:
    """In the caller's transaction: use the challenge, create the verified cameo, write its 'grant' entry.

    Reference media (a frame and the voice, AES-GCM encrypted) go to ``media`` first and are deleted
    again if anything after fails, so a refusal leaves no file behind.
    """
    restrictions = _check_restrictions(restrictions or [])
    if permission not in PERMISSIONS:
        raise CameoError(422, f"permission {permission!r} must be one of {', '.join(PERMISSIONS)}")
    handle, cameo_id = challenge_row.handle, cameo_id or new_id("cam")
    keys: list[dict] = []
    try:
        if media is not None:
            cipher = _media_cipher(settings)
            for kind, data in extract_reference_media(recording).items():
                key = f"cameos/{cameo_id}/{kind}.enc"
                media.put_bytes(cipher.encrypt(data, cameo_id=cameo_id), key)
                keys.append({"kind": kind, "key": key})
        if not cameo_store.use_challenge(conn=conn, challenge_id=challenge_row.id):
            raise CameoError(409, f"challenge {challenge_row.id} was already used (each challenge is single use)")
        if cameo_store.get_cameo_by_handle(conn=conn, handle=handle) is not None:
            raise CameoError(409, f"cameo handle @{handle} is taken")
        cameo_store.insert_cameo(conn=conn, values=dict(
            id=cameo_id, handle=handle, owner_id=challenge_row.user_id, kind=challenge_row.kind, permission=permission,
            verified=True, restrictions=restrictions, require_approval=False,
            attestation=attestation.model_dump(mode="json"), media=keys))
        approved = sorted(set(approved or []))
        cameo_store.set_approved(conn=conn, cameo_id=cameo_id, user_ids=approved)
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo_id, actor_id=challenge_row.user_id,
                      action="grant", detail={"permission": permission, "restrictions": restrictions, "approved": approved,
                                              "require_approval": False, "verifier": attestation.verifier,
                                              "attestation_sha256": _sha(attestation.message())})
        return cameo_store.get_cameo(conn=conn, cameo_id=cameo_id)
    except BaseException:
        for k in keys:
            media.delete(k["key"])
        raise


@functools.lru_cache(maxsize=4)
def synthetic_recording(seconds: float = 2.5, size: int = 64) -> bytes:
    """A small MP4 (moving gradient, a tone) that passes the embedded format verifier: for seeding and tests.

    It is not a person; the local verifier does not look. Seeded demo cameos are registered with it.
    """
    import tempfile
    from pathlib import Path

    import numpy as np

    from kinora.settings import MediaSettings
    from models.media import encode_mp4

    fps, rate = 12, 16_000
    n = round(seconds * fps)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    frames = np.stack([np.stack([np.roll(ramp, 3 * i)[None, :].repeat(size, 0)] * 3, axis=-1) for i in range(n)])
    t = np.arange(round(seconds * rate)) / rate
    audio = (0.2 * np.sin(2 * np.pi * 440 * t))[None, :].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "recording.mp4"
        encode_mp4(frames.astype(np.uint8), audio, fps=fps, sample_rate=rate, out_path=out, settings=MediaSettings())
        return out.read_bytes()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def reference_media(*, settings: Settings, media: MediaStore, cameo: sa.Row, kind: str) -> bytes | None:
    """Decrypt one of the cameo's reference files ('reference_image' or 'voice_sample')."""
    entry = next((m for m in cameo.media or [] if m["kind"] == kind), None)
    if entry is None or not media.exists(entry["key"]):
        return None
    return _media_cipher(settings).decrypt(media.get_bytes(entry["key"]), cameo_id=cameo.id)


def _check_restrictions(items: list[str]) -> list[str]:
    items = [r.strip() for r in items if r.strip()]
    if len(items) > MAX_RESTRICTIONS:
        raise CameoError(422, f"{len(items)} restrictions; at most {MAX_RESTRICTIONS}")
    long = next((r for r in items if len(r) > MAX_RESTRICTION_CHARS), None)
    if long:
        raise CameoError(422, f"restriction {long[:40]!r}... is longer than {MAX_RESTRICTION_CHARS} characters")
    return items


# -- owner actions -------------------------------------------------------------------------------
def owned(*, conn: sa.Connection, owner_id: str, handle: str) -> sa.Row:
    cameo = cameo_store.get_cameo_by_handle(conn=conn, handle=handle)
    if cameo is None or cameo.deleted_at is not None:
        raise CameoError(404, f"no cameo @{handle.lstrip('@')}")
    if cameo.owner_id != owner_id:
        raise CameoError(403, f"only the owner of @{cameo.handle} may do this")
    return cameo


def update(
    *, conn: sa.Connection, settings: Settings, owner_id: str, handle: str, permission: str | None = None,
    restrictions: list[str] | None = None, require_approval: bool | None = None,
) -> sa.Row:
    """Change permission, restrictions or the approve-each-video switch; one 'change' ledger entry."""
    cameo = owned(conn=conn, owner_id=owner_id, handle=handle)
    if cameo.revoked_at is not None:
        raise CameoError(409, f"cameo @{cameo.handle} is revoked; register it again to use it")
    values: dict = {}
    if permission is not None:
        if permission not in PERMISSIONS:
            raise CameoError(422, f"permission {permission!r} must be one of {', '.join(PERMISSIONS)}")
        values["permission"] = permission
    if restrictions is not None:
        values["restrictions"] = _check_restrictions(restrictions)
    if require_approval is not None:
        values["require_approval"] = bool(require_approval)
    values = {k: v for k, v in values.items() if getattr(cameo, k) != v}
    if values:
        cameo_store.update_cameo(conn=conn, cameo_id=cameo.id, values=values)
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                      action="change", detail=values)
    return cameo_store.get_cameo(conn=conn, cameo_id=cameo.id)


def set_approved_users(*, conn: sa.Connection, settings: Settings, owner_id: str, handle: str, user_handles: list[str]) -> list[str]:
    """Make the approved list exactly ``user_handles``; one 'approve_users' ledger entry."""
    cameo = owned(conn=conn, owner_id=owner_id, handle=handle)
    ids = []
    for h in dict.fromkeys(u.lstrip("@") for u in user_handles):
        user = user_store.get_user_by_handle(conn=conn, handle=h)
        if user is None:
            raise CameoError(422, f"unknown user @{h}")
        ids.append(user.id)
    before = cameo_store.approved_users(conn=conn, cameo_id=cameo.id)
    if sorted(ids) != before:
        cameo_store.set_approved(conn=conn, cameo_id=cameo.id, user_ids=ids)
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                      action="approve_users", detail={"approved": sorted(ids)})
    return sorted(ids)


def revoke(*, conn: sa.Connection, settings: Settings, owner_id: str, handle: str) -> int:
    """Revoke the cameo: no new use, and every video using it is unpublished now. Returns videos withdrawn."""
    cameo = owned(conn=conn, owner_id=owner_id, handle=handle)
    if cameo.revoked_at is None:
        cameo_store.revoke_cameo(conn=conn, cameo_id=cameo.id)
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                      action="revoke", detail={})
    return withdraw_cameo_videos(conn=conn, cameo_id=cameo.id, reason=f"cameo @{cameo.handle} was revoked by its owner")


def delete(*, conn: sa.Connection, settings: Settings, media: MediaStore, owner_id: str, handle: str) -> int:
    """Revoke, erase the reference media, and mark the cameo deleted (the ledger keeps its history)."""
    withdrawn = revoke(conn=conn, settings=settings, owner_id=owner_id, handle=handle)
    cameo = cameo_store.get_cameo_by_handle(conn=conn, handle=handle)
    for entry in cameo.media or []:
        media.delete(entry["key"])
    cameo_store.update_cameo(conn=conn, cameo_id=cameo.id, values=dict(deleted_at=utcnow(), media=[]))
    ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                  action="delete", detail={"media_erased": len(cameo.media or [])})
    return withdrawn


def withdraw_cameo_videos(*, conn: sa.Connection, cameo_id: str, reason: str) -> int:
    uses = [u for u in cameo_store.uses_of_cameo(conn=conn, cameo_id=cameo_id) if u.status in ("active", "pending")]
    ids = [u.video_id for u in uses]
    cameo_store.set_use_status(conn=conn, video_ids=ids, cameo_id=cameo_id, status="withdrawn", reason=reason)
    return catalog.unpublish(conn=conn, reasons={v: reason for v in ids})


def list_uses(*, conn: sa.Connection, owner_id: str, handle: str) -> list[dict]:
    """Every video and draft that uses the cameo, with its state."""
    return uses_of(conn=conn, cameo_id=owned(conn=conn, owner_id=owner_id, handle=handle).id)


def uses_of(*, conn: sa.Connection, cameo_id: str) -> list[dict]:
    """Every video and draft that used the cameo (deleted or not), with its state."""
    uses = cameo_store.uses_of_cameo(conn=conn, cameo_id=cameo_id)
    videos = catalog.videos_by_ids(conn=conn, ids=[u.video_id for u in uses])
    users = user_store.users_by_ids(conn=conn, ids=[u.requester_id for u in uses])
    out = []
    for u in uses:
        v = videos.get(u.video_id)
        state = ("unpublished" if v is None or v.unpublished_at is not None
                 else "draft" if v.published_at is None else "published")
        out.append(dict(video_id=u.video_id, job_id=u.job_id, requester=users[u.requester_id].handle if u.requester_id in users else u.requester_id,
                        use_status=u.status, video_state=state, prompt=v.prompt if v else None,
                        reason=u.reason or (v.unpublished_reason if v else None), created_at=u.created_at))
    return out


def remove_use(*, conn: sa.Connection, settings: Settings, owner_id: str, handle: str, video_id: str) -> dict:
    """The owner removes a video or draft that uses the cameo: it is unpublished for good."""
    cameo = owned(conn=conn, owner_id=owner_id, handle=handle)
    use = cameo_store.get_use(conn=conn, cameo_id=cameo.id, video_id=video_id)
    if use is None:
        raise CameoError(404, f"video {video_id} does not use @{cameo.handle}")
    reason = f"removed by the owner of cameo @{cameo.handle}"
    if use.status != "removed":
        cameo_store.set_use_status(conn=conn, video_ids=[video_id], cameo_id=cameo.id, status="removed", reason=reason,
                                   only_from=("active", "pending", "withdrawn"))
        catalog.unpublish(conn=conn, reasons={video_id: reason})
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                      action="remove_use", detail={"video_id": video_id})
    return {"video_id": video_id, "use_status": "removed"}


def approve_use(*, conn: sa.Connection, settings: Settings, owner_id: str, handle: str, video_id: str) -> dict:
    """The owner approves a draft that uses the cameo; it publishes once every owner has approved and consent holds."""
    from kinora.trust.consent import check_videos

    cameo = owned(conn=conn, owner_id=owner_id, handle=handle)
    use = cameo_store.get_use(conn=conn, cameo_id=cameo.id, video_id=video_id)
    if use is None:
        raise CameoError(404, f"video {video_id} does not use @{cameo.handle}")
    if use.status != "pending":
        raise CameoError(409, f"the use of @{cameo.handle} in {video_id} is {use.status}, not pending")
    cameo_store.set_use_status(conn=conn, video_ids=[video_id], cameo_id=cameo.id, status="active", reason=None,
                               only_from=("pending",))
    ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=owner_id,
                  action="approve_use", detail={"video_id": video_id})
    video = catalog.get_video(conn=conn, video_id=video_id)
    published = False
    if video is not None and video.published_at is None and video.unpublished_at is None:
        # Publish only if the draft would now be servable (other owners approved, consent still holds).
        as_published = {**video._asdict(), "published_at": utcnow()}
        verdict = check_videos(conn=conn, videos=[_RowLike(as_published)], max_cameos=settings.consent.max_cameos_per_video)
        if verdict[video_id].holds:
            published = catalog.publish_draft(conn=conn, video_id=video_id)
    return {"video_id": video_id, "use_status": "active", "published": published}


class _RowLike:
    """A dict with attribute access, for checking a draft as if it were published."""

    def __init__(self, data: dict):
        self.__dict__.update(data)
