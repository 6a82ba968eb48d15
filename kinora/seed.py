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


def seed(*, conn: sa.Connection, seed_dir: Path = SEED_DIR) -> SeedCounts:
    """Load the three seed files into the operational store (all checked before anything is written)."""
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
    for c in cameos_file.cameos:
        is_new = cameo_store.get_cameo_by_handle(conn=conn, handle=c.handle) is None
        changed = cameo_store.upsert_cameo(
            conn=conn, cameo_id=c.id, handle=c.handle, owner_id=c.owner, kind=c.kind,
            permission=c.permission, verified=c.verified, restrictions=c.restrictions,
        )
        cameo_store.set_approved(conn=conn, cameo_id=c.id, user_ids=c.approved)
        if changed:
            cameo_store.append_ledger(
                conn=conn, cameo_id=c.id, actor_id=c.owner, action="grant" if is_new else "change",
                detail={"permission": c.permission, "approved": c.approved, "restrictions": c.restrictions},
            )
    import_rows(conn=conn, rows=works)
    return SeedCounts(users=len(users_file.users), cameos=len(cameos_file.cameos), works=len(works))
