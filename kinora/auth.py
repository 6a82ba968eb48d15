"""API keys: issue, check, and the per-key quotas.

A key is 32 random bytes shown once at creation (``kin_`` + URL-safe base64); only its
SHA-256 is stored, which is enough for a high-entropy secret (no dictionary to attack).
Each key belongs to a user, carries scopes, and has quotas: generations per UTC day and jobs
in flight at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from kinora.ids import new_id
from kinora.stores import api_keys as key_store
from kinora.stores import users as user_store

SCOPES = {
    "generations:write": "submit and cancel generations",
    "generations:read": "read generation jobs",
    "videos:read": "read published videos and their metadata",
    "generations:act_as": "submit on behalf of another user (app backends)",
    "cameos:write": "register, change, revoke and delete one's own cameos; approve or remove their uses",
    "cameos:read": "read one's own cameos and every video that uses them",
    "follows:write": "follow and unfollow users",
    "feed:read": "read the feed",
    "events:write": "send engagement events (app backends)",
}
DEFAULT_SCOPES = ["generations:write", "generations:read", "videos:read", "cameos:write", "cameos:read",
                  "follows:write", "feed:read"]


class AuthError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and its user."""

    key_id: str
    user_id: str
    user_handle: str
    scopes: frozenset[str]
    per_day: int
    max_concurrent: int

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise AuthError(403, f"this API key lacks the scope {scope!r}")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    *, conn: sa.Connection, user_handle: str, name: str, scopes: list[str] | None = None, per_day: int = 100,
    max_concurrent: int = 4,
) -> tuple[str, str]:
    """Create a key for the user; return (key id, secret). The secret is not stored and cannot be shown again."""
    user = user_store.get_user_by_handle(conn=conn, handle=user_handle)
    if user is None:
        raise ValueError(f"unknown user @{user_handle.lstrip('@')}")
    scopes = list(scopes or DEFAULT_SCOPES)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {sorted(SCOPES)}")
    if per_day < 1 or max_concurrent < 1:
        raise ValueError("per_day and max_concurrent must be at least 1")
    secret = "kin_" + secrets.token_urlsafe(32)
    key_id = new_id("key")
    key_store.insert_key(conn=conn, key_id=key_id, user_id=user.id, name=name, key_hash=hash_key(secret),
                         prefix=secret[:10], scopes=scopes, per_day=per_day, max_concurrent=max_concurrent)
    return key_id, secret


def authenticate(*, conn: sa.Connection, authorization: str | None) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` to a principal, or raise 401."""
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>'")
    row = key_store.key_with_handle(conn=conn, key_hash=hash_key(authorization.removeprefix("Bearer ").strip()))
    if row is None or row.revoked_at is not None:
        raise AuthError(401, "invalid or revoked API key")
    return Principal(key_id=row.id, user_id=row.user_id, user_handle=row.user_handle, scopes=frozenset(row.scopes),
                     per_day=row.per_day, max_concurrent=row.max_concurrent)


def check_quota(*, conn: sa.Connection, principal: Principal, now: datetime | None = None) -> None:
    """Raise 429 (with seconds to wait) when the key is over its daily or concurrent quota."""
    now = now or datetime.now(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    used = key_store.count_jobs_since(conn=conn, key_id=principal.key_id, since=day_start)
    if used >= principal.per_day:
        wait = int((day_start + timedelta(days=1) - now).total_seconds()) + 1
        raise AuthError(429, f"daily quota of {principal.per_day} generations used up; resets at 00:00 UTC", wait)
    active = key_store.count_active_jobs(conn=conn, key_id=principal.key_id)
    if active >= principal.max_concurrent:
        raise AuthError(429, f"{active} jobs already queued or running; this key allows {principal.max_concurrent} at once", 5)
