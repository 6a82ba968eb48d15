"""Engine creation and schema migrations for the operational store.

SQLite (the embedded default) runs in WAL mode with a busy timeout, because Serve replicas and
flows write from several processes. A PostgreSQL URL works unchanged. The schema is brought to
the newest Alembic revision on start-up; concurrent start-ups are serialised (a file lock for
SQLite, an advisory lock for PostgreSQL) so two processes never migrate at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x6B696E6F  # "kino": advisory lock key shared by every Kinora process

_engines: dict[str, sa.Engine] = {}


def make_engine(url: str, *, busy_timeout_s: float = 30.0) -> sa.Engine:
    """Return an engine for ``url`` with the pragmas Kinora relies on."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI types
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def get_engine(url: str, *, busy_timeout_s: float = 30.0) -> sa.Engine:
    """Return the process-wide engine for ``url``, migrated to the newest schema."""
    engine = _engines.get(url)
    if engine is None:
        engine = make_engine(url, busy_timeout_s=busy_timeout_s)
        migrate(engine)
        _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests and forked workers call this)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    if engine.dialect.name == "sqlite":
        db_path = engine.url.database
        lock_path = Path(f"{db_path}.migrate.lock") if db_path and db_path != ":memory:" else None
        handle = open(lock_path, "a+") if lock_path else None  # noqa: SIM115 - held for the block
        try:
            if handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
            with engine.begin() as conn:
                yield conn
        finally:
            if handle:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            yield conn


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    if current_revision(engine) == head_revision():
        return
    with _migration_lock(engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
    logger.info("operational store migrated to %s", head_revision())
