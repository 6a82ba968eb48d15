"""Stores: the operational database (SQL lives in this package only), the Parquet lake, media."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
