"""The consent ledger: append-only, hash-chained and signed.

Every grant, change, revocation and use of a cameo is one entry. Entry ``n`` stores
``prev_hash`` (entry ``n-1``'s hash, or 64 zeros for the first), and ``entry_hash`` =
SHA-256 of the canonical JSON of (seq, ts, cameo, actor, action, detail, prev_hash); the ledger key
(Ed25519) signs each entry hash. A one-row head records the newest seq, the entry count and the
newest hash, also signed. So:

- an edited entry no longer matches its hash (and a recomputed hash no longer matches the signature);
- a removed or reordered entry breaks the next entry's ``prev_hash`` link;
- entries removed from the end disagree with the signed head's count and hash.

:func:`verify` walks the whole chain and names every defect (``kinora consent verify-ledger``).
Appends lock the head row first (an UPDATE), so concurrent writers on SQLite or PostgreSQL queue
instead of forking the chain. Entries written before the chain existed (schema revision 0002)
are sealed, in order, by the first append after the upgrade.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import utcnow
from kinora.trust.keys import LEDGER_KEY_FILE, key_id, load_or_create_ed25519, public_b64, sign_b64, verify_ed25519

GENESIS = "0" * 64


def _ts(value: datetime) -> str:
    """One spelling of a timestamp whatever the database hands back (SQLite: naive UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def entry_hash(*, seq: int, ts: datetime, cameo_id: str, actor_id: str, action: str, detail: dict, prev_hash: str) -> str:
    payload = {"seq": seq, "ts": _ts(ts), "cameo_id": cameo_id, "actor_id": actor_id, "action": action,
               "detail": detail, "prev_hash": prev_hash}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _head_message(seq: int, count: int, hash_: str) -> bytes:
    return f"kinora-ledger-head:{seq}:{count}:{hash_}".encode()


@dataclass(frozen=True)
class LedgerKey:
    """The ledger's signing key and its public half."""

    private: Ed25519PrivateKey
    public: str
    key_id: str

    @classmethod
    def load(cls, path: Path) -> "LedgerKey":
        private = load_or_create_ed25519(path)
        public = public_b64(private)
        return cls(private=private, public=public, key_id=key_id(public))

    @classmethod
    def for_settings(cls, settings: Settings) -> "LedgerKey":
        path = settings.consent_key_dir / LEDGER_KEY_FILE
        cached = _KEYS.get(path)
        if cached is None:
            cached = _KEYS[path] = cls.load(path)
        return cached


_KEYS: dict[Path, LedgerKey] = {}


def append(*, conn: sa.Connection, key: LedgerKey, cameo_id: str, actor_id: str, action: str, detail: dict) -> int:
    """Append one signed, chained entry in the caller's transaction and return its seq."""
    head = cameo_store.lock_ledger_head(conn=conn)
    prev_seq, prev_hash, count = head.seq, head.entry_hash, head.count
    for row in cameo_store.ledger_entries_after(conn=conn, seq=prev_seq):  # unsealed (pre-0003) entries
        prev_hash = _seal(conn, key, row, prev_hash)
        prev_seq, count = row.seq, count + 1
    ts = utcnow()
    seq = cameo_store.insert_ledger_entry(conn=conn, ts=ts, cameo_id=cameo_id, actor_id=actor_id, action=action, detail=detail)
    row = cameo_store.get_ledger_entry(conn=conn, seq=seq)
    new_hash = _seal(conn, key, row, prev_hash)
    count += 1
    cameo_store.set_ledger_head(conn=conn, seq=seq, count=count, entry_hash=new_hash,
                                signature=sign_b64(key.private, _head_message(seq, count, new_hash)))
    return seq


def _seal(conn: sa.Connection, key: LedgerKey, row: sa.Row, prev_hash: str) -> str:
    h = entry_hash(seq=row.seq, ts=row.ts, cameo_id=row.cameo_id, actor_id=row.actor_id, action=row.action,
                   detail=row.detail, prev_hash=prev_hash)
    cameo_store.seal_ledger_entry(conn=conn, seq=row.seq, prev_hash=prev_hash, entry_hash=h,
                                  signature=sign_b64(key.private, h.encode()), key_id=key.key_id)
    return h


class LedgerReport(BaseModel):
    ok: bool
    entries: int
    problems: list[str]


def verify(*, conn: sa.Connection, public_keys: list[str]) -> LedgerReport:
    """Check every entry's hash, link and signature, and the signed head; list each defect found."""
    keys = {key_id(k): k for k in public_keys}
    problems: list[str] = []
    prev_hash, prev_seq, n = GENESIS, None, 0
    for row in cameo_store.list_ledger(conn=conn):
        n += 1
        where = f"entry seq {row.seq} ({row.action} on {row.cameo_id})"
        if row.entry_hash is None:
            problems.append(f"{where}: not sealed (no hash or signature)")
            prev_hash, prev_seq = GENESIS, row.seq
            continue
        if row.prev_hash != prev_hash:
            after = f"entry seq {prev_seq}" if prev_seq is not None else "the start of the ledger"
            problems.append(f"{where}: does not follow {after} (an entry was removed, inserted or reordered)")
        recomputed = entry_hash(seq=row.seq, ts=row.ts, cameo_id=row.cameo_id, actor_id=row.actor_id,
                                action=row.action, detail=row.detail, prev_hash=row.prev_hash)
        if recomputed != row.entry_hash:
            problems.append(f"{where}: content does not match its hash (edited)")
        public = keys.get(row.key_id or "")
        if public is None:
            problems.append(f"{where}: signed by unknown key {row.key_id!r}")
        elif not verify_ed25519(public, row.signature or "", row.entry_hash.encode()):
            problems.append(f"{where}: signature does not verify (hash rewritten)")
        prev_hash, prev_seq = row.entry_hash, row.seq
    head = cameo_store.get_ledger_head(conn=conn)
    if head is None:
        problems.append("head: missing")
    else:
        if head.count != n or (n and (head.seq != prev_seq or head.entry_hash != prev_hash)):
            problems.append(f"head: records {head.count} entries ending at seq {head.seq}; the ledger has {n} "
                            f"ending at seq {prev_seq} (entries removed from or added after the end)")
        if n and not any(verify_ed25519(k, head.signature, _head_message(head.seq, head.count, head.entry_hash))
                         for k in keys.values()):
            problems.append("head: signature does not verify")
    return LedgerReport(ok=not problems, entries=n, problems=problems)
