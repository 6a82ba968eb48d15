"""The rights registry file format (CSV or JSONL), read whole or not at all.

Fields: ``holder, work, kind, aliases, description, policy, terms``, and optionally
``holder_default``. In CSV, aliases are ``|``-separated and terms is a JSON object (optional); in
JSONL aliases is a list.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kinora.errors import InputFileError, pydantic_location
from kinora.ids import stable_id
from kinora.stores import rights as rights_store

WorkKind = Literal["character", "franchise", "brand", "music/artist", "public_figure"]


class RightsRow(BaseModel):
    """One work of one holder, as it appears in a registry file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    holder: str = Field(min_length=1, max_length=200, description="Rights holder's name.")
    work: str = Field(min_length=1, max_length=200, description="The work's canonical name.")
    kind: WorkKind = Field(description="What the work is.")
    aliases: list[str] = Field(default_factory=list, description="Other names and nicknames.")
    description: str = Field("", max_length=1000, description="One line describing the work.")
    policy: Literal["blocked", "allowed", "default"] = Field(
        description="blocked (opted out), allowed on terms, or default (the platform regime decides).")
    terms: dict | None = Field(None, description="Terms when allowed: attribution, contexts, revenue share tag.")
    holder_default: Literal["blocked", "allowed", "default"] | None = Field(
        None, description="Optional: the holder's default for its works marked 'default' (blocked, allowed, or "
                          "default to leave them to the platform regime). Empty leaves the holder's setting as it is.")

    @field_validator("aliases", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [a.strip() for a in v.split("|") if a.strip()]
        return v

    @field_validator("holder_default", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("terms", mode="before")
    @classmethod
    def _json(cls, v: object) -> object:
        if isinstance(v, str):
            if not v.strip():
                return None
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object: {exc.msg}") from exc
        return v


def read_registry_file(path: Path) -> list[RightsRow]:
    """Parse and validate every row; raise :class:`InputFileError` naming the line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "", "file not found")
    raw: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"holder", "work", "kind", "policy"} - set(reader.fieldnames or [])
            if missing:
                raise InputFileError(path, "line 1", f"missing columns {sorted(missing)}")
            for row in reader:
                raw.append((reader.line_num, {k: v for k, v in row.items() if k is not None}))
    elif path.suffix.lower() in {".jsonl", ".ndjson"}:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputFileError(path, f"line {n}", f"not valid JSON ({exc.msg})") from exc
    else:
        raise InputFileError(path, "", "registry files are .csv or .jsonl")
    rows = []
    defaults: dict[str, tuple[str, int]] = {}  # holder -> (holder_default, first line that set it)
    for line, data in raw:
        try:
            row = RightsRow.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputFileError(path, f"line {line}, field {pydantic_location(err['loc'])}", err["msg"]) from None
        if row.holder_default is not None:
            seen = defaults.setdefault(row.holder.casefold(), (row.holder_default, line))
            if seen[0] != row.holder_default:
                raise InputFileError(path, f"line {line}, field holder_default",
                                     f"{row.holder_default!r} contradicts {seen[0]!r} set for {row.holder} on line {seen[1]}")
        rows.append(row)
    return rows


def import_rows(*, conn: sa.Connection, rows: list[RightsRow]) -> int:
    """Upsert the rows (ids derive from names, so importing twice changes nothing); return the count."""
    for row in rows:
        holder_id = stable_id("hld", row.holder.casefold())
        rights_store.upsert_holder(conn=conn, holder_id=holder_id, name=row.holder, default_policy=row.holder_default)
        rights_store.upsert_work(
            conn=conn, work_id=stable_id("wrk", row.holder.casefold(), row.work.casefold()), holder_id=holder_id,
            name=row.work, kind=row.kind, aliases=row.aliases, description=row.description,
            policy=row.policy, terms=row.terms,
        )
    return len(rows)
