"""Shared fixtures: one data home, one Ray + Serve, one Prefect harness per test session.

Expensive things are built once per session (STYLE rule 7); tests that change state use
their own ``tmp_path`` home.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Which operational store the per-test stores use: "sqlite" (the embedded default) or "postgresql"
# (a fresh database per test on the server TEST_POSTGRES_URL names). `make test` runs the suite on
# SQLite, then every test that touches the store (marked `store` below) again on PostgreSQL.
TEST_STORE = os.environ.get("TEST_STORE", "sqlite")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Before anything imports Ray or Prefect: local Ray without token auth, Prefect quiet and offline.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="kinora-tests-"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep every test Ray on 127.0.0.1 (serving/runtime.py)
os.environ["PREFECT_HOME"] = str(_SESSION_ROOT / "prefect")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for key in [k for k in os.environ if k.startswith("KINORA_")]:
    del os.environ[key]  # tests never inherit a developer's settings
os.environ["KINORA_HOME"] = str(_SESSION_ROOT / "home")
os.environ["KINORA_SERVE__PORT"] = "18123"
os.environ["KINORA_SERVE__METRICS_EXPORT_PORT"] = "18124"
os.environ["KINORA_SERVE__JOB_LEASE_S"] = "3"  # replicas killed in tests: their jobs are taken over quickly
os.environ["KINORA_SERVE__RECOVERY_INTERVAL_S"] = "0.5"


def pytest_collection_modifyitems(config, items):
    """Mark `store` every test that opens a per-test operational store (its fixtures reach
    ``database_url``): what the PostgreSQL pass of `make test` runs again."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)


@pytest.fixture
def database_url(request) -> str | None:
    """The per-test operational store: None (SQLite under the test's data home), or with
    TEST_STORE=postgresql the URL of a fresh PostgreSQL database, dropped afterwards."""
    if TEST_STORE != "postgresql":
        return None
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"TEST_STORE=postgresql but no PostgreSQL at {TEST_POSTGRES_URL}: {type(exc).__name__}: {exc}")
    name = f"kinora_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from kinora.stores.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    url = sa.engine.make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    # commands the test runs (CliRunner, subprocesses) read their settings from the environment
    request.getfixturevalue("monkeypatch").setenv("KINORA_STORE__DATABASE_URL", url)
    return url


@pytest.fixture
def settings(tmp_path, database_url):
    """Settings with a fresh data home (and the per-test store of ``database_url``)."""
    from kinora.settings import Settings

    return Settings(home=tmp_path / "home", store={"database_url": database_url} if database_url else {})


@pytest.fixture
def stores(settings):
    from kinora.stores.bundle import Stores

    return Stores.open(settings)


@pytest.fixture
def seeded(stores, settings):
    """Stores holding the demo seed data."""
    from kinora.seed import seed

    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
    return stores


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3-compatible server (moto's, in its own process) for the object-storage tests."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(_SESSION_ROOT / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the S3 test server did not start (see {_SESSION_ROOT / 'moto.log'})")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh, empty bucket on the test S3 server; returns (endpoint, bucket)."""
    import uuid

    import fsspec

    bucket = f"kinora-{uuid.uuid4().hex[:10]}"
    fs = fsspec.filesystem("s3", key="test", secret="test", skip_instance_cache=True,
                           client_kwargs={"endpoint_url": s3_endpoint, "region_name": "eu-west-1"})
    fs.mkdir(bucket)
    return s3_endpoint, bucket


@pytest.fixture(scope="session")
def session_settings():
    """Settings of the shared session home (the one Serve and flows use)."""
    from kinora.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def tiny_generator():
    """The tiny LTX-2 generator, built once for every test that needs a real model in-process."""
    from kinora.settings import GenerationSettings
    from models.generation.ltx2 import LTX2Generator

    return LTX2Generator.from_settings(GenerationSettings())


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def serve_app(session_settings):
    """Ray + the Serve application on 127.0.0.1, once per session, over the seeded session home."""
    from kinora.seed import seed
    from kinora.stores.bundle import Stores
    from serving.runtime import shutdown, start_serve

    stores = Stores.open(session_settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=session_settings, media=stores.media)
    start_serve(session_settings)
    yield session_settings
    shutdown()
