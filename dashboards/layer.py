"""The analytics layer on disk: refresh it from the lake and the catalog, connect DuckDB to it.

    <analytics_dir>/catalog/<table>.parquet       the catalog snapshot (kinora.stores.catalog_export)
    <analytics_dir>/ranking_models.parquet        one row per ranker version (from the registry's cards)
    <analytics_dir>/rollups/<name>/<day>.parquet  per-day rollups of the events (dashboards.metrics.ROLLUPS)
    <analytics_dir>/compact/<table>/<day>.parquet the small lake tables, one file per day
    <analytics_dir>/derived/<name>.parquet        tables recomputed from the rollups on every refresh
    <analytics_dir>/state.json                    what each day's outputs were built from

:func:`refresh` is incremental: a day is rebuilt only when the files of its lake partition (or of
the day before, which attribution reads) changed since the last refresh; a quarantined batch,
which leaves the partition, changes it too. Every output file is written under a temporary
name and renamed into place, so a dashboard reading meanwhile sees the old file or the new one.
:func:`connect` gives an in-memory DuckDB with every layer as views (empty ones where nothing
was built yet), so a page on an empty install shows "no data yet" instead of failing.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dashboards import metrics
from datasets.schemas import TABLES
from kinora.stores.lake import Lake, LakeFile

logger = logging.getLogger(__name__)

STATE_VERSION = 2  # bump when a rollup's SQL changes meaning: the next refresh rebuilds every day

MODEL_SCHEMA = pa.schema([
    ("version", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")), ("in_production", pa.bool_()),
    ("promoted_at", pa.timestamp("us", tz="UTC")), ("ndcg10", pa.float64()), ("lightgbm_ndcg10", pa.float64()),
    ("recent_popular_ndcg10", pa.float64()), ("most_popular_ndcg10", pa.float64()), ("auc_watch", pa.float64()),
    ("auc_like", pa.float64()), ("auc_share", pa.float64()), ("auc_remix", pa.float64()),
    ("auc_negative", pa.float64()), ("train_impressions", pa.int64()),
])


@dataclass(frozen=True)
class Paths:
    """Where the layer reads (``lake``: a folder or object storage) and writes (``root``: a local folder)."""

    lake: Lake
    root: Path

    def rollup(self, name: str, day: str) -> Path:
        return self.root / "rollups" / name / f"{day}.parquet"

    def compact(self, table: str, day: str) -> Path:
        return self.root / "compact" / table / f"{day}.parquet"

    def derived(self, name: str) -> Path:
        return self.root / "derived" / f"{name}.parquet"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def models(self) -> Path:
        return self.root / "ranking_models.parquet"

    @property
    def state(self) -> Path:
        return self.root / "state.json"


@dataclass
class RefreshReport:
    refreshed_at: str
    days_rebuilt: dict[str, int]
    days_removed: dict[str, int]
    catalog_rows: dict[str, int]
    models: int
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        rebuilt = ", ".join(f"{t} {n}" for t, n in self.days_rebuilt.items() if n) or "nothing new"
        return (f"analytics refreshed: days rebuilt: {rebuilt}; catalog {sum(self.catalog_rows.values())} rows; "
                f"{self.models} ranker versions; {sum(self.seconds.values()):.1f} s")


# -- reading the lake --------------------------------------------------------------------------

def as_lake(lake: Lake | Path | str) -> Lake:
    return lake if isinstance(lake, Lake) else Lake(lake)


def partitions(lake: Lake | Path | str, table: str) -> dict[str, list[LakeFile]]:
    """The table's files by day partition (``YYYY-MM-DD``)."""
    return as_lake(lake).partitions(table)


def fingerprint(files: list[LakeFile]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{f.size}:{f.version};".encode())
    return h.hexdigest()[:20]


def _previous(day: str) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _files_sql(files: list[LakeFile]) -> list[str]:
    return [f.url for f in files]


# -- refresh -------------------------------------------------------------------------------------

@contextmanager
def _locked(root: Path):
    """One refresh at a time per analytics folder (the scheduled flow and a CLI call may meet)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".refresh.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refresh(*, lake: Lake | Path | str, root: Path, catalog: Callable[[Path], dict[str, int]] | None = None,
            ranking_dir: Path | None = None, completion_share: float = 0.9, full: bool = False,
            threads: int | None = None, progress: Callable[[str], None] | None = None) -> RefreshReport:
    """Bring the analytics layer up to date with the lake (and the catalog, when ``catalog`` is
    given: a callable that writes the snapshot into the folder it is handed).

    ``full`` rebuilds every day (after a change of ``completion_share`` or of the catalog's video
    lengths, which past days were rolled up with).
    """
    say = progress or logger.info
    paths = Paths(as_lake(lake), Path(root))
    seconds: dict[str, float] = {}
    with _locked(paths.root):
        state = _read_state(paths)
        if full or state.get("version") != STATE_VERSION or state.get("completion_share") != completion_share:
            state = {"version": STATE_VERSION, "completion_share": completion_share, "days": {}}
        t0 = time.perf_counter()
        catalog_rows = catalog(paths.catalog) if catalog else {}
        models = _write_models(paths, ranking_dir)
        seconds["catalog"] = time.perf_counter() - t0

        con = _duckdb(threads)
        paths.lake.place.attach(con)  # a lake on object storage: DuckDB reads it through fsspec
        rebuilt: dict[str, int] = {}
        removed: dict[str, int] = {}
        t0 = time.perf_counter()
        for table in metrics.COMPACTED:
            rebuilt[table], removed[table] = _compact(paths, table, state)
        seconds["compact"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        _inputs(con, paths)  # catalog and compacted tables as views (video_dim for completion)
        rebuilt["events"], removed["events"] = _roll_up_events(con, paths, state, completion_share, say)
        seconds["rollups"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        _rollup_views(con, paths)
        for name, sql in metrics.DERIVED.items():
            _copy(con, sql, paths.derived(name))
            _view(con, name, paths.derived(name))
        seconds["derived"] = time.perf_counter() - t0
        con.close()

        state["refreshed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        tmp = paths.state.with_name(".state.json.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, paths.state)
    report = RefreshReport(refreshed_at=state["refreshed_at"], days_rebuilt=rebuilt, days_removed=removed,
                           catalog_rows=catalog_rows, models=models, seconds={k: round(v, 3) for k, v in seconds.items()})
    say(report.line())
    return report


def _read_state(paths: Paths) -> dict:
    try:
        return json.loads(paths.state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _duckdb(threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # days are UTC days whatever the machine's zone
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, **params) -> int:
    """Run ``sql`` and write its result to ``path`` atomically; return the rows written."""
    table = con.sql(sql, params=_used(sql, params) or None).arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    _write(table, path)
    return table.num_rows


def _used(sql: str, params: dict) -> dict:
    names = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in params.items() if k in names}


def _compact(paths: Paths, table: str, state: dict) -> tuple[int, int]:
    """Copy each changed day of a small lake table into one file (the lake's contract applied, so
    a column added later reads as null in older files)."""
    seen = state["days"].setdefault(table, {})
    parts = partitions(paths.lake, table)
    rebuilt = 0
    for day, files in parts.items():
        fp = fingerprint(files)
        if seen.get(day) == fp:
            continue
        _write(pa.concat_tables([paths.lake.read_file(f.url, schema=TABLES[table]) for f in files]),
               paths.compact(table, day))
        seen[day] = fp
        rebuilt += 1
    gone = [d for d in seen if d not in parts]
    for day in gone:
        paths.compact(table, day).unlink(missing_ok=True)
        del seen[day]
    return rebuilt, len(gone)


def _roll_up_events(con, paths: Paths, state: dict, completion_share: float, say) -> tuple[int, int]:
    events, requests = partitions(paths.lake, "events"), partitions(paths.lake, "feed_requests")
    seen = state["days"].setdefault("events", {})
    # a day's outputs depend on its own events and requests and on the day before (attribution)
    want = {}
    for day in events:
        prev = _previous(day)
        want[day] = "|".join(fingerprint(x) for x in (events.get(day, []), events.get(prev, []),
                                                      requests.get(day, []), requests.get(prev, [])))
    todo = sorted(d for d, fp in want.items() if seen.get(d) != fp)
    for i, day in enumerate(todo, 1):
        con.execute(metrics.DAY_EVENTS, {"files": _files_sql(events[day])})
        prev_files = events.get(_previous(day), [])
        if prev_files:
            con.execute(metrics.PREV_IMPRESSIONS, {"files": _files_sql(prev_files)})
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE prev_impressions AS "
                        "SELECT user_id, video_id, ts, position, request_id FROM day_events LIMIT 0")
        req_files = requests.get(day, []) + requests.get(_previous(day), [])
        _temp_from_lake(con, paths.lake, "day_requests", "feed_requests", req_files)
        for name, sql in metrics.ROLLUPS.items():
            _copy(con, sql, paths.rollup(name, day), completion_share=completion_share)
        seen[day] = want[day]
        if len(todo) > 3 and (i % 10 == 0 or i == len(todo)):
            say(f"analytics: rolled up {i}/{len(todo)} days")
    gone = [d for d in seen if d not in events]
    for day in gone:
        for name in metrics.ROLLUPS:
            paths.rollup(name, day).unlink(missing_ok=True)
        del seen[day]
    return len(todo), len(gone)


def _temp_from_lake(con, lake: Lake, name: str, table: str, files: list[LakeFile]) -> None:
    data = (pa.concat_tables([lake.read_file(f.url, schema=TABLES[table]) for f in files]) if files
            else TABLES[table].empty_table())
    con.register(f"{name}_arrow", data)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def _write_models(paths: Paths, ranking_dir: Path | None) -> int:
    """One row per ranker version: its card's offline metrics and when it was promoted."""
    rows = []
    if ranking_dir is not None and Path(ranking_dir).is_dir():
        from kinora.ranking.registry import Registry

        reg = Registry(Path(ranking_dir))
        production = reg.production()
        promoted = {}
        for entry in reg.history():
            promoted.setdefault(entry["version"], entry.get("at"))
        for version in reg.list():
            card = reg.card(version)
            m = card.get("metrics", {})
            heads, base = m.get("heads", {}), m.get("baselines", {})
            rows.append(dict(
                version=version, created_at=_ts(card.get("created_at")), in_production=version == production,
                promoted_at=_ts(promoted.get(version)), ndcg10=m.get("ndcg@10"),
                lightgbm_ndcg10=base.get("lightgbm_lambdarank", {}).get("ndcg@10"),
                recent_popular_ndcg10=base.get("recent_popular", {}).get("ndcg@10"),
                most_popular_ndcg10=base.get("most_popular", {}).get("ndcg@10"),
                **{f"auc_{h}": _num(heads.get(h, {}).get("auc")) for h in ("watch", "like", "share", "remix", "negative")},
                train_impressions=card.get("train_impressions")))
    _write(pa.Table.from_pylist(rows, schema=MODEL_SCHEMA), paths.models)
    return len(rows)


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _num(value) -> float | None:
    return None if value is None or value != value else float(value)  # NaN (a head with one class) -> null


# -- connect -------------------------------------------------------------------------------------

def connect(*, lake: Lake | Path | str, root: Path, threads: int | None = None, raw: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the semantic layer as views: the catalog snapshot (``cat_*``),
    ``video_dim``, the rollups, the derived tables, and ``generations``/``decisions``/
    ``verifications``/``feed_requests``/``ranking_models``. With ``raw``, also the lake as written
    (``*_raw``, and ``events`` deduplicated) for ad-hoc questions: binding those views reads the
    footer of every lake file, which the pages never need."""
    paths = Paths(as_lake(lake), Path(root))
    con = _duckdb(threads)
    if raw:
        paths.lake.place.attach(con)
        for table, schema in TABLES.items():
            if paths.lake.listing(table):
                glob = paths.lake.glob(table).replace("'", "''")
                con.execute(f"CREATE VIEW {table}_raw AS SELECT * EXCLUDE (date) "
                            f"FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)")
            else:
                _empty(con, f"{table}_raw", schema)
        con.execute(metrics.EVENTS_VIEW)
    _inputs(con, paths)
    _rollup_views(con, paths)
    for name, sql in metrics.DERIVED.items():
        if paths.derived(name).is_file():
            _view(con, name, paths.derived(name))
        else:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM ({sql}) LIMIT 0")
    if paths.models.is_file():
        _view(con, "ranking_models", paths.models)
    else:
        _empty(con, "ranking_models", MODEL_SCHEMA)
    return con


def _empty(con, name: str, schema: pa.Schema) -> None:
    con.register(f"{name}_empty", schema.empty_table())
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_empty")


def _view(con, name: str, path_or_glob: Path | str) -> None:
    """A view over files this layer wrote: one schema per name (a change of meaning bumps
    STATE_VERSION, which rebuilds them all), so no per-file schema reconciliation is needed."""
    literal = str(path_or_glob).replace("'", "''")  # DDL takes no parameters: quote the literal
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{literal}')")


def _inputs(con, paths: Paths) -> None:
    """The catalog snapshot, the compacted lake tables and ``video_dim``."""
    from kinora.stores.catalog_export import EXPORTS

    for name, (_q, _m, schema) in EXPORTS.items():
        f = paths.catalog / f"{name}.parquet"
        _view(con, f"cat_{name}", f) if f.is_file() else _empty(con, f"cat_{name}", schema)
    views = {"generations": "generation_rows", "videos": "lake_videos"}
    for table in metrics.COMPACTED:
        name = views.get(table, table)
        folder = paths.root / "compact" / table
        if any(folder.glob("*.parquet")):
            _view(con, name, folder / "*.parquet")
        else:
            _empty(con, name, TABLES[table])
    con.execute(metrics.VIDEO_DIM_VIEW)
    con.execute(metrics.GENERATIONS_VIEW)


def _rollup_views(con, paths: Paths) -> None:
    """The rollups as views; where none was built yet, the rollup's SQL over empty inputs (so
    the columns are exactly those a refresh would write)."""
    missing = [n for n in metrics.ROLLUPS if not any((paths.root / "rollups" / n).glob("*.parquet"))]
    if missing:
        _empty(con, "day_events", TABLES["events"].remove(TABLES["events"].get_field_index("batch_id")))
        con.execute("CREATE OR REPLACE TEMP VIEW prev_impressions AS "
                    "SELECT user_id, video_id, ts, position, request_id FROM day_events")
        _empty(con, "day_requests", TABLES["feed_requests"])
    for name, sql in metrics.ROLLUPS.items():
        if name in missing:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM ({sql.replace('$completion_share', '0.9')}) LIMIT 0")
        else:
            _view(con, name, paths.root / "rollups" / name / "*.parquet")


def refresh_all(settings: "Settings", *, full: bool = False,  # noqa: F821 - kinora.settings
                progress: Callable[[str], None] | None = None) -> RefreshReport:
    """Refresh the layer of this Kinora: its lake, its catalog (snapshot taken in one read
    transaction of the operational store) and its ranker registry."""
    from kinora.stores.bundle import Stores
    from kinora.stores.catalog_export import export_catalog

    engine = Stores.open(settings).engine

    def snapshot(folder: Path) -> dict[str, int]:
        with engine.connect() as conn, conn.begin():
            return export_catalog(conn=conn, out_dir=folder)

    from kinora.stores.objects import lake_place

    return refresh(lake=Lake(lake_place(settings)), root=settings.analytics_dir, catalog=snapshot,
                   ranking_dir=settings.ranking_dir, completion_share=settings.dashboard.completion_share, full=full,
                   threads=settings.dashboard.duckdb_threads, progress=progress)


def refreshed_at(root: Path) -> dt.datetime | None:
    """When the layer was last refreshed (None: never)."""
    state = _read_state(Paths(Path("."), Path(root)))
    return dt.datetime.fromisoformat(state["refreshed_at"]) if state.get("refreshed_at") else None


def query(con: duckdb.DuckDBPyConnection, sql: str, *, _setup: bool = True, **params) -> pl.DataFrame:
    """Run one metric query with the named parameters it uses and return a Polars frame (the temp
    tables of :data:`dashboards.metrics.PAGE_SETUP` it reads are built first)."""
    missing = set(re.findall(r"\$(\w+)", sql)) - set(params)
    if missing:
        raise ValueError(f"query needs parameters {sorted(missing)}")
    if _setup:
        for name, setup in _setups().items():
            if re.search(rf"\b{name}\b", sql):
                _build(con, name, setup, params)
    return con.sql(sql, params=_used(sql, params) or None).pl()


def _setups() -> dict[str, str]:
    return {name: sql for tables in metrics.PAGE_SETUP.values() for name, sql in tables.items()}


def _build(con, name: str, sql: str, params: dict) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", _used(sql, params) or None)


def page_data(con: duckdb.DuckDBPyConnection, page: str, **params) -> dict[str, pl.DataFrame]:
    """Every query of one page (:data:`dashboards.metrics.PAGES`), by name, after the temp tables
    they share (:data:`dashboards.metrics.PAGE_SETUP`), built once."""
    for name, sql in metrics.PAGE_SETUP.get(page, {}).items():
        _build(con, name, sql, params)
    return {name: query(con, sql, _setup=False, **params) for name, sql in metrics.PAGES[page].items()}
