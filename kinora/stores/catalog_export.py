"""A snapshot of the catalog for analytics: operational tables copied to Parquet.

The dashboards never query the operational store: DuckDB reads Parquet files that this module
writes (one per table, replaced atomically), so an analyst's scan never holds a lock a Serve
replica or a flow is waiting for, and the same files work when the store is PostgreSQL. Only
what the metrics need is copied; no secrets (API keys, attestations, media keys), no reference
media, and the consent ledger without its hashes and signatures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from kinora.stores.schema import (
    cameos,
    consent_ledger,
    rights_holders,
    rights_rescreens,
    rights_works,
    users,
    video_cameo_uses,
    videos,
)

TS = pa.timestamp("us", tz="UTC")


def _video_row(r) -> dict:
    prov = r.provenance or {}
    return dict(video_id=r.id, creator_id=r.creator_id, campaign_id=r.campaign_id, prompt=r.prompt,
                duration_ms=r.duration_ms, width=r.width, height=r.height, model_family=r.model_family,
                model_version=r.model_version, created_at=r.created_at, published_at=r.published_at,
                unpublished_at=r.unpublished_at, unpublished_reason=r.unpublished_reason, remix_of=r.remix_of,
                content_id=r.content_id, c2pa_state=prov.get("c2pa_state"), cameo_count=len(r.cameo_ids or []))


# table name -> (query, row mapper or None for plain rows, Arrow schema)
EXPORTS: dict[str, tuple[sa.Select, Callable | None, pa.Schema]] = {
    "videos": (
        sa.select(videos.c.id, videos.c.creator_id, videos.c.campaign_id, videos.c.prompt, videos.c.duration_ms,
                  videos.c.width, videos.c.height, videos.c.model_family, videos.c.model_version, videos.c.created_at,
                  videos.c.published_at, videos.c.unpublished_at, videos.c.unpublished_reason, videos.c.remix_of,
                  videos.c.content_id, videos.c.provenance, videos.c.cameo_ids),
        _video_row,
        pa.schema([("video_id", pa.string()), ("creator_id", pa.string()), ("campaign_id", pa.string()),
                   ("prompt", pa.string()), ("duration_ms", pa.int64()), ("width", pa.int32()), ("height", pa.int32()),
                   ("model_family", pa.string()), ("model_version", pa.string()), ("created_at", TS),
                   ("published_at", TS), ("unpublished_at", TS), ("unpublished_reason", pa.string()),
                   ("remix_of", pa.string()), ("content_id", pa.int64()), ("c2pa_state", pa.string()),
                   ("cameo_count", pa.int32())]),
    ),
    "users": (
        sa.select(users.c.id.label("user_id"), users.c.handle, users.c.created_at),
        None,
        pa.schema([("user_id", pa.string()), ("handle", pa.string()), ("created_at", TS)]),
    ),
    "cameos": (
        sa.select(cameos.c.id.label("cameo_id"), cameos.c.handle, cameos.c.owner_id, cameos.c.kind, cameos.c.permission,
                  cameos.c.verified, cameos.c.created_at, cameos.c.revoked_at, cameos.c.deleted_at),
        None,
        pa.schema([("cameo_id", pa.string()), ("handle", pa.string()), ("owner_id", pa.string()), ("kind", pa.string()),
                   ("permission", pa.string()), ("verified", pa.bool_()), ("created_at", TS), ("revoked_at", TS),
                   ("deleted_at", TS)]),
    ),
    "cameo_uses": (
        sa.select(video_cameo_uses.c.video_id, video_cameo_uses.c.cameo_id, video_cameo_uses.c.requester_id,
                  video_cameo_uses.c.status, video_cameo_uses.c.reason, video_cameo_uses.c.created_at,
                  video_cameo_uses.c.decided_at),
        None,
        pa.schema([("video_id", pa.string()), ("cameo_id", pa.string()), ("requester_id", pa.string()),
                   ("status", pa.string()), ("reason", pa.string()), ("created_at", TS), ("decided_at", TS)]),
    ),
    "consent_ledger": (
        sa.select(consent_ledger.c.seq, consent_ledger.c.ts, consent_ledger.c.cameo_id, consent_ledger.c.actor_id,
                  consent_ledger.c.action),
        None,
        pa.schema([("seq", pa.int64()), ("ts", TS), ("cameo_id", pa.string()), ("actor_id", pa.string()),
                   ("action", pa.string())]),
    ),
    "rights_works": (
        sa.select(rights_works.c.id.label("work_id"), rights_holders.c.name.label("holder"), rights_works.c.name.label("work"),
                  rights_works.c.kind, rights_works.c.policy, rights_works.c.updated_at)
        .join(rights_holders, rights_holders.c.id == rights_works.c.holder_id),
        None,
        pa.schema([("work_id", pa.string()), ("holder", pa.string()), ("work", pa.string()), ("kind", pa.string()),
                   ("policy", pa.string()), ("updated_at", TS)]),
    ),
    "rights_rescreens": (
        sa.select(rights_rescreens.c.id, rights_rescreens.c.trigger, rights_rescreens.c.started_at,
                  rights_rescreens.c.finished_at, rights_rescreens.c.checked, rights_rescreens.c.taken_down),
        None,
        pa.schema([("id", pa.int64()), ("trigger", pa.string()), ("started_at", TS), ("finished_at", TS),
                   ("checked", pa.int64()), ("taken_down", pa.int64())]),
    ),
}


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def export_catalog(*, conn: sa.Connection, out_dir: Path, page: int = 50_000) -> dict[str, int]:
    """Copy every table of :data:`EXPORTS` to ``out_dir/<table>.parquet``; return the row counts.

    Read in one transaction (``conn``), so the tables agree with each other; written in pages of
    ``page`` rows so a large catalog does not sit in memory as Python objects twice.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (query, mapper, schema) in EXPORTS.items():
        batches: list[pa.RecordBatch] = []
        result = conn.execution_options(yield_per=page).execute(query)
        for rows in result.partitions(page):
            dicts: Iterable[dict] = (mapper(r) for r in rows) if mapper else (r._asdict() for r in rows)
            batches.append(pa.RecordBatch.from_pylist(list(dicts), schema=schema))
        table = pa.Table.from_batches(batches, schema=schema)
        _write_atomic(table, out_dir / f"{name}.parquet")
        counts[name] = table.num_rows
    return counts
