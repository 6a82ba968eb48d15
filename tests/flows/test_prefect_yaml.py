"""prefect.yaml deploys against a real local Prefect server, with the campaign flow's parameters."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("prefect server exited during start-up") from None
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("prefect server did not become healthy in 120 s")
    yield {**env, "PREFECT_API_URL": api}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _prefect(env, *args):
    return subprocess.run([*PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_every_deployment_names_an_existing_flow():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for dep in spec["deployments"]:
        path, func = dep["entrypoint"].split(":")
        assert (ROOT / path).is_file(), dep["entrypoint"]
        assert f"def {func}(" in (ROOT / path).read_text()


def test_prefect_deploy_accepts_the_campaign_deployment(prefect_server):
    pool = _prefect(prefect_server, "work-pool", "create", "kinora-local", "--type", "process")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = _prefect(prefect_server, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    inspected = _prefect(prefect_server, "deployment", "inspect", "campaign/campaign", "--output", "json")
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    dep = json.loads(inspected.stdout)
    assert dep["work_pool_name"] == "kinora-local"
    assert dep["parameters"] == {"campaign_file": "datasets/campaigns/demo.yaml"}
    assert "campaign_file" in dep["parameter_openapi_schema"]["properties"]
    assert dep["global_concurrency_limit"]["limit"] == 1  # one campaign at a time on the generator
    for name, params in (("consent-sweep/consent-sweep", {"page": 1000}), ("rights-rescreen/rights-rescreen", {"page": 1000}),
                         ("analytics-refresh/analytics-refresh", {"full": False})):  # the five-minute flows
        inspected = _prefect(prefect_server, "deployment", "inspect", name, "--output", "json")
        assert inspected.returncode == 0, inspected.stdout + inspected.stderr
        dep = json.loads(inspected.stdout)
        assert dep["parameters"] == params, name
        [schedule] = dep["schedules"]
        assert schedule["active"] is True and schedule["schedule"]["interval"] == 300.0, name
