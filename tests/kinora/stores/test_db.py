import multiprocessing as mp
import uuid

import pytest
import sqlalchemy as sa

from kinora.stores.db import current_revision, get_engine, head_revision, make_engine, migrate

TABLES = {"users", "follows", "cameos", "cameo_approvals", "consent_ledger", "rights_holders", "rights_works",
          "jobs", "decisions", "videos", "rights_rescreens", "event_ids", "hidden_videos", "alembic_version"}


def _schema_drift(engine) -> list:
    """What the migrated database lacks or has beyond ``kinora.stores.schema`` (tables, columns, indexes)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from kinora.stores.schema import metadata

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")]


def test_migrate_creates_schema_and_is_idempotent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/k.db")
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    assert _schema_drift(engine) == []  # the migrations and the schema module describe the same database


def _migrate_in_child(url: str) -> None:
    get_engine(url)


def test_concurrent_first_start_migrates_once(tmp_path):
    url = f"sqlite:///{tmp_path}/race.db"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_migrate_in_child, args=(url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert current_revision(make_engine(url)) == head_revision()


def _postgres_admin_url() -> str | None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    try:
        with sa.create_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return None
    return url


def test_postgres_url_is_accepted():
    admin = _postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (CI and the dev machines have one)")
    name = f"kinora_t_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        migrate(engine)
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        assert current_revision(engine) == head_revision()
        assert _schema_drift(engine) == []
        engine.dispose()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
