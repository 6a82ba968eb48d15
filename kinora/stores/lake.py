"""The Parquet lake: append-only tables partitioned by date, one file per writer and batch.

Many processes write at once (Serve replicas, flows), so nothing is ever rewritten in place:
each :meth:`Lake.append` writes a new file ``<table>/date=YYYY-MM-DD/<writer>-<uuid>.parquet``
through a temporary name and an atomic rename, so readers never see half a file; the file and
the rename are fsynced before ``append`` returns, so what it reports written survives a crash.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.schemas import TABLES


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LakeError(ValueError):
    """A row does not fit its table's contract."""


class Lake:
    """Append rows to, and list files of, the lake tables under ``root``."""

    def __init__(self, root: Path, *, writer: str | None = None) -> None:
        self.root = Path(root)
        self.writer = writer or f"{socket.gethostname()}-{os.getpid()}"

    def append(self, table: str, rows: Sequence[Mapping]) -> list[Path]:
        """Validate ``rows`` against the table's schema and write them; return the files written."""
        if table not in TABLES:
            raise LakeError(f"unknown lake table {table!r}; known: {sorted(TABLES)}")
        if not rows:
            return []
        schema = TABLES[table]
        by_date: dict[str, list[Mapping]] = defaultdict(list)
        for row in rows:
            extra = set(row) - set(schema.names)
            if extra:
                raise LakeError(f"{table}: unknown fields {sorted(extra)}")
            ts = row.get("ts") or row.get("published_at")
            if not isinstance(ts, datetime):
                raise LakeError(f"{table}: every row needs a datetime 'ts' (or 'published_at') to partition on")
            by_date[ts.date().isoformat()].append(row)
        batches = []
        for day, day_rows in sorted(by_date.items()):  # validate every partition before writing any
            try:
                batch = pa.Table.from_pylist([dict(r) for r in day_rows], schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise LakeError(f"{table}: {exc}") from exc
            batches.append((day, batch))
        return self._write(table, batches)

    def append_columns(self, table: str, columns: Mapping[str, Sequence], *, day: str) -> list[Path]:
        """Write rows given as columns, all of one ``day`` (a fast path for writers that make many
        rows at once, such as the feed's impression log: no per-row objects)."""
        schema = TABLES[table]
        try:
            batch = pa.Table.from_pydict({f.name: columns.get(f.name, [None] * len(next(iter(columns.values()))))
                                          for f in schema}, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LakeError(f"{table}: {exc}") from exc
        return self._write(table, [(day, batch)]) if batch.num_rows else []

    def _write(self, table: str, batches: list[tuple[str, pa.Table]]) -> list[Path]:
        schema = TABLES[table]
        for _day, batch in batches:
            for fld in schema:
                if not fld.nullable and batch.column(fld.name).null_count:
                    raise LakeError(f"{table}: field {fld.name!r} is required but missing in some rows")
        written = []
        for day, batch in batches:
            folder = self.root / table / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{self.writer}-{uuid.uuid4().hex}.parquet"
            tmp = folder / f".{name}.tmp"
            try:
                pq.write_table(batch, tmp, compression="zstd")
                _fsync(tmp)  # on disk before it has a name readers see, and before the caller answers
                os.replace(tmp, folder / name)
                _fsync(folder)  # the rename itself
            finally:
                tmp.unlink(missing_ok=True)
            written.append(folder / name)
        return written

    def glob(self, table: str) -> str:
        """The glob DuckDB and Polars read the table with (hive partitioning on ``date``)."""
        return str(self.root / table / "date=*" / "*.parquet")

    def files(self, table: str) -> list[Path]:
        return sorted((self.root / table).glob("date=*/*.parquet"))

    def read(self, table: str) -> pa.Table:
        """Read a whole table (small tables and tests; analytics go through DuckDB)."""
        files = self.files(table)
        if not files:
            return TABLES[table].empty_table()
        return pa.concat_tables([pq.read_table(f, schema=TABLES[table]) for f in files])
