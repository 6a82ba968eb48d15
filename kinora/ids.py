"""Identifiers: sortable random ids for new things, content-derived ids for idempotent work."""

from __future__ import annotations

import hashlib
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Return ``prefix_`` plus a time-ordered random id (48-bit ms clock, 80 random bits)."""
    ms = int(time.time() * 1000)
    return f"{prefix}_{_b32(ms, 10)}{_b32(int.from_bytes(os.urandom(10), 'big'), 16)}"


def stable_id(prefix: str, *parts: object) -> str:
    """Return an id derived from ``parts``: the same inputs always give the same id.

    Campaign requests use it so that a rerun of a campaign finds the work it already did.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return f"{prefix}_{_b32(int.from_bytes(digest[:16], 'big'), 26)}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
