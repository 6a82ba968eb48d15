"""Seed users, cameos with consent grants, and the rights registry from files under ``datasets/seed``.

Seeding is idempotent: running it twice leaves the same rows and adds no ledger entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinora.errors import InputFileError, pydantic_location
from kinora.stores import cameos as cameo_store
from kinora.stores import users as user_store
from kinora.settings import Settings
from kinora.stores.media import MediaStore
from kinora.trust import cameos as cameo_service
from kinora.trust import ledger
from kinora.trust.ledger import LedgerKey
from kinora.trust.registry_file import import_rows, read_registry_file

SEED_DIR = Path(__file__).resolve().parent.parent / "datasets" / "seed"


class _SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedUser(_SeedModel):
    id: str = Field(pattern=r"^usr_[a-z0-9_]+$")
    handle: str = Field(pattern=r"^[a-z0-9_.]{2,32}$")
    display_name: str


class UsersFile(_SeedModel):
    users: list[SeedUser]
    follows: list[tuple[str, str]] = []


class SeedCameo(_SeedModel):
    id: str = Field(pattern=r"^cam_[a-z0-9_]+$")
    handle: str = Field(pattern=r"^[a-z0-9_.]{2,32}$")
    owner: str
    kind: Literal["person", "pet", "object", "character"]
    permission: Literal["only_me", "approved", "mutuals", "everyone"]
    approved: list[str] = []
    verified: bool
    restrictions: list[str] = []


class CameosFile(_SeedModel):
    cameos: list[SeedCameo]


class SeedCounts(BaseModel):
    users: int
    cameos: int
    works: int


def _read_yaml(path: Path, model: type[_SeedModel]) -> _SeedModel:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "", "file not found") from None
    except yaml.YAMLError as exc:
        raise InputFileError(path, "", f"not valid YAML ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputFileError(path, pydantic_location(err["loc"]), err["msg"]) from None


def seed(*, conn: sa.Connection, settings: Settings, media: MediaStore | None = None, seed_dir: Path = SEED_DIR) -> SeedCounts:
    """Load the three seed files into the operational store (all checked before anything is written).

    A cameo marked ``verified`` is registered the way a person registers one: a liveness challenge,
    a recording (synthesized: a gradient and a tone), the configured verifier's signed attestation,
    checked against the trusted keys; its reference media go, encrypted, to ``media`` when given.
    An unverified seed cameo gets a grant but cannot be used until verified.
    """
    users_file = _read_yaml(seed_dir / "users.yaml", UsersFile)
    cameos_file = _read_yaml(seed_dir / "cameos.yaml", CameosFile)
    works = read_registry_file(seed_dir / "rights.csv")
    known = {u.id for u in users_file.users}
    for i, (a, b) in enumerate(users_file.follows):
        for who in (a, b):
            if who not in known:
                raise InputFileError(seed_dir / "users.yaml", f"follows[{i}]", f"unknown user {who!r}")
    for i, c in enumerate(cameos_file.cameos):
        for who in [c.owner, *c.approved]:
            if who not in known:
                raise InputFileError(seed_dir / "cameos.yaml", f"cameos[{i}]", f"unknown user {who!r}")

    for u in users_file.users:
        user_store.upsert_user(conn=conn, user_id=u.id, handle=u.handle, display_name=u.display_name)
    for a, b in users_file.follows:
        user_store.add_follow(conn=conn, follower_id=a, followee_id=b)
    recording = None
    for c in cameos_file.cameos:
        existing = cameo_store.get_cameo(conn=conn, cameo_id=c.id)
        if existing is None:
            recording = recording or cameo_service.synthetic_recording()
            _register_seed_cameo(conn=conn, settings=settings, media=media, cameo=c, recording=recording)
            continue
        if existing.revoked_at is not None:  # the owner revoked it; seeding never brings consent back
            continue
        cameo_service.update(conn=conn, settings=settings, owner_id=c.owner, handle=c.handle, permission=c.permission,
                             restrictions=c.restrictions)
        if sorted(c.approved) != cameo_store.approved_users(conn=conn, cameo_id=c.id):
            cameo_store.set_approved(conn=conn, cameo_id=c.id, user_ids=sorted(c.approved))
            ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=c.id, actor_id=c.owner,
                          action="approve_users", detail={"approved": sorted(c.approved)})
    import_rows(conn=conn, rows=works)
    return SeedCounts(users=len(users_file.users), cameos=len(cameos_file.cameos), works=len(works))


def _register_seed_cameo(*, conn: sa.Connection, settings: Settings, media: MediaStore | None, cameo: SeedCameo,
                         recording: bytes) -> None:
    if not cameo.verified:
        cameo_store.upsert_cameo(conn=conn, cameo_id=cameo.id, handle=cameo.handle, owner_id=cameo.owner, kind=cameo.kind,
                                 permission=cameo.permission, verified=False, restrictions=cameo.restrictions)
        cameo_store.set_approved(conn=conn, cameo_id=cameo.id, user_ids=sorted(cameo.approved))
        ledger.append(conn=conn, key=LedgerKey.for_settings(settings), cameo_id=cameo.id, actor_id=cameo.owner,
                      action="grant", detail={"permission": cameo.permission, "restrictions": cameo.restrictions,
                                              "approved": sorted(cameo.approved), "verified": False})
        return
    challenge = cameo_service.start_challenge(conn=conn, settings=settings, user_id=cameo.owner, handle=cameo.handle,
                                              kind=cameo.kind)
    row = cameo_store.get_challenge(conn=conn, challenge_id=challenge.id)
    attestation = cameo_service.verify_recording(settings=settings, challenge_row=row, user_id=cameo.owner,
                                                 challenge_id=challenge.id, recording=recording)
    cameo_service.create_verified(conn=conn, settings=settings, media=media, challenge_row=row, attestation=attestation,
                                  recording=recording, permission=cameo.permission, restrictions=cameo.restrictions,
                                  cameo_id=cameo.id, approved=cameo.approved)
