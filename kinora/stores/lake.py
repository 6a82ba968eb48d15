"""The Parquet lake: append-only tables partitioned by date, one file per writer and batch.

Many processes write at once (Serve replicas, flows), so nothing is ever rewritten in place:
each :meth:`Lake.append` writes a new file ``<table>/date=YYYY-MM-DD/<writer>-<uuid>.parquet``.
In a local folder it goes through a temporary name and an atomic rename, so readers never see
half a file, and the file and the rename are fsynced before ``append`` returns, so what it
reports written survives a crash. On object storage (``s3://...``, see
:mod:`kinora.stores.objects`) one PUT makes the object appear whole, and the PUT has returned
(durable) before ``append`` does.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.schemas import TABLES
from kinora.stores.objects import Place, place


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LakeError(ValueError):
    """A row does not fit its table's contract."""


@dataclass(frozen=True)
class LakeFile:
    """One file of a table: what DuckDB/Polars read (``url``), and what changes when it does."""

    url: str
    day: str
    name: str
    size: int
    version: str  # mtime locally, ETag/LastModified on object storage

    def __str__(self) -> str:
        return self.url


class Lake:
    """Append rows to, and list and read files of, the lake tables under ``root`` (a folder or
    an object-storage URL)."""

    def __init__(self, root: Path | str | Place, *, writer: str | None = None) -> None:
        self.place = root if isinstance(root, Place) else place(root)
        self.writer = writer or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def root(self) -> Path | str:
        """The local folder, or the object-storage URL."""
        return Path(self.place.root) if self.place.local else str(self.place)

    @property
    def local(self) -> bool:
        return self.place.local

    def append(self, table: str, rows: Sequence[Mapping]) -> list[str]:
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

    def append_columns(self, table: str, columns: Mapping[str, Sequence], *, day: str) -> list[str]:
        """Write rows given as columns, all of one ``day`` (a fast path for writers that make many
        rows at once, such as the feed's impression log: no per-row objects)."""
        schema = TABLES[table]
        try:
            batch = pa.Table.from_pydict({f.name: columns.get(f.name, [None] * len(next(iter(columns.values()))))
                                          for f in schema}, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LakeError(f"{table}: {exc}") from exc
        return self._write(table, [(day, batch)]) if batch.num_rows else []

    def _write(self, table: str, batches: list[tuple[str, pa.Table]]) -> list[str]:
        schema = TABLES[table]
        for _day, batch in batches:
            for fld in schema:
                if not fld.nullable and batch.column(fld.name).null_count:
                    raise LakeError(f"{table}: field {fld.name!r} is required but missing in some rows")
        written = []
        for day, batch in batches:
            name = f"{self.writer}-{uuid.uuid4().hex}.parquet"
            if self.local:
                folder = Path(self.place.path(table, f"date={day}"))
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{name}.tmp"
                try:
                    pq.write_table(batch, tmp, compression="zstd")
                    _fsync(tmp)  # on disk before it has a name readers see, and before the caller answers
                    os.replace(tmp, folder / name)
                    _fsync(folder)  # the rename itself
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(str(folder / name))
            else:
                key = self.place.path(table, f"date={day}", name)
                with self.place.fs.open(key, "wb") as out:  # the object appears whole when the upload closes
                    pq.write_table(batch, out, compression="zstd")
                written.append(self.place.url(key))
        return written

    def glob(self, table: str) -> str:
        """The glob DuckDB and Polars read the table with (hive partitioning on ``date``)."""
        return self.place.url(self.place.path(table, "date=*", "*.parquet"))

    def listing(self, table: str) -> list[LakeFile]:
        """Every file of ``table``, sorted by day and name, with what identifies its content."""
        found = self.place.fs.glob(self.place.path(table, "date=*", "*.parquet"), detail=True)
        out = []
        for path, info in found.items():
            folder, name = path.rsplit("/", 2)[-2:]
            if name.startswith("."):
                continue
            version = info.get("mtime") or info.get("ETag") or info.get("LastModified") or ""
            out.append(LakeFile(url=self.place.url(path), day=folder.removeprefix("date="), name=name,
                                size=int(info.get("size") or 0), version=str(version)))
        return sorted(out, key=lambda f: (f.day, f.name))

    def files(self, table: str) -> list[str]:
        """The URLs (local paths in a folder) of every file of ``table``."""
        return [f.url for f in self.listing(table)]

    def partitions(self, table: str) -> dict[str, list[LakeFile]]:
        """The table's files by day partition (``YYYY-MM-DD``)."""
        out: dict[str, list[LakeFile]] = {}
        for f in self.listing(table):
            out.setdefault(f.day, []).append(f)
        return out

    def read(self, table: str) -> pa.Table:
        """Read a whole table (small tables and tests; analytics go through DuckDB)."""
        files = self.files(table)
        if not files:
            return TABLES[table].empty_table()
        return pa.concat_tables([self.read_file(f, schema=TABLES[table]) for f in files])

    def read_file(self, url: str, **kwargs) -> pa.Table:
        with self.place.fs.open(url.split("://", 1)[-1], "rb") as f:
            return pq.read_table(f, **kwargs)

    # -- bookkeeping files beside the tables (the quality gate's marks, quarantine) ------------

    def exists(self, rel: str) -> bool:
        return self.place.fs.exists(self.place.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.place.path(rel)
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.place.fs.pipe_file(path, data)

    def move(self, url: str, rel: str) -> None:
        """Move one file of the lake (by URL) to ``rel`` under the root."""
        dst = self.place.path(rel)
        if self.local:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(url, dst)
        else:
            self.place.fs.mv(url.split("://", 1)[-1], dst)

    def download(self, url: str, target: Path) -> None:
        """Copy one lake file to a local path (a hard link when the lake is a local folder)."""
        if self.local:
            try:
                os.link(url, target)
            except OSError:  # another file system
                self.place.fs.get_file(url, str(target))
        else:
            self.place.fs.get_file(url.split("://", 1)[-1], str(target))

    def polars_options(self) -> dict[str, str] | None:
        """The ``storage_options`` Polars needs to read this lake's URLs (None locally)."""
        return None if self.local else dict(self.place.polars_options)
