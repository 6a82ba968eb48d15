"""`kinora status`: every component's health in one call, and an exit status ops can script."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from kinora.cli import app


def _status(monkeypatch, settings, *args):
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["status", "--json", "--timeout", "0.5", *args])
    return result.exit_code, json.loads(result.stdout)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


def test_a_healthy_store_without_a_running_api(seeded, settings, monkeypatch):
    monkeypatch.setenv("KINORA_SERVE__PORT", str(_closed_port()))  # not the session's Serve, which may be up
    code, out = _status(monkeypatch, settings)
    by = {c["component"]: c for c in out["components"]}
    assert code == 0 and out["healthy"] is True
    assert by["store"]["state"] == "ok" and "schema" in by["store"]["detail"]
    assert (by["lake"]["state"], by["media"]["state"]) == ("ok", "ok")
    assert by["analytics"]["state"] == "warn" and "never refreshed" in by["analytics"]["detail"]
    assert by["ranker"]["state"] == "warn"  # nothing trained yet
    assert by["api (Serve)"]["state"] == "down" and by["ray"]["state"] == "down"
    assert set(by) == {"store", "jobs", "lake", "media", "analytics", "ranker", "api (Serve)", "ray", "prefect"}


def test_a_stuck_job_is_named(seeded, settings, monkeypatch):
    from kinora.stores import jobs as job_store
    from kinora.stores import utcnow
    from kinora.stores.schema import jobs

    with seeded.engine.begin() as conn:
        job_store.create_job(conn=conn, job_id="req_stuck", requester_id="usr_alice", prompt="p", params={})
        conn.execute(jobs.update().where(jobs.c.id == "req_stuck").values(
            status="running", lease_owner="replica-gone", lease_expires_at=utcnow() - timedelta(minutes=10)))
    code, out = _status(monkeypatch, settings)
    jobs_check = next(c for c in out["components"] if c["component"] == "jobs")
    assert code == 0 and jobs_check["state"] == "warn" and "req_stuck" in jobs_check["detail"] and "running 1" in jobs_check["detail"]


def test_an_unreachable_store_fails_the_status_and_the_rest_still_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("KINORA_STORE__DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["status", "--timeout", "0.5"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert " down " in lines["store"] and "OperationalError" in lines["store"]
    assert " ok " in lines["lake"] and " ok " in lines["media"]  # still checked


def test_the_running_api_is_seen(serve_app, monkeypatch):
    code, out = _status(monkeypatch, serve_app)
    by = {c["component"]: c for c in out["components"]}
    assert code == 0 and by["api (Serve)"]["state"] == "ok" and "database ok" in by["api (Serve)"]["detail"]
    assert by["ray"]["state"] == "ok"
