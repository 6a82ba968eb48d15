"""serving/config.yaml deploys the application with the Serve CLI onto a Ray cluster named by RAY_ADDRESS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str | None = None, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers,
                                 method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:  # while the app deploys, Serve's proxy answers in plain text
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"text": raw.decode(errors="replace")}


@pytest.fixture
def cluster(tmp_path):
    """A separate Ray head on loopback (not the test session's Ray) that other drivers join by address.

    ``ray start --head`` would turn 127.0.0.1 into the machine's routable address: see serving/local_head.py.
    """
    from serving.local_head import loopback_head

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "KINORA_HOME": str(tmp_path / "home"),
           "RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "1.0"}
    env.pop("RAY_ADDRESS", None)
    with loopback_head(env=env, cwd=str(ROOT)) as address:
        yield {"env": env, "address": address, "home": tmp_path / "home"}


def test_serve_run_config_against_a_cluster(cluster, tmp_path):
    from kinora.auth import create_key
    from kinora.seed import seed
    from kinora.settings import Settings
    from kinora.stores.bundle import Stores

    stores = Stores.open(Settings(home=cluster["home"]))
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=Settings(home=cluster["home"]), media=stores.media)
        key = create_key(conn=conn, user_handle="alice", name="cluster")[1]
    http_port = _free_port()
    config = yaml.safe_load((ROOT / "serving" / "config.yaml").read_text())
    config["http_options"]["port"] = http_port  # the file as shipped, on a port free here
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = {**cluster["env"], "RAY_ADDRESS": cluster["address"]}
    deadline = time.monotonic() + 90
    while True:  # the head takes a few seconds to accept drivers
        run = subprocess.run([str(BIN / "serve"), "run", "--non-blocking", str(cfg)], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=180)
        if run.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(1)
    assert _get(f"{base}/healthz") == (200, {"status": "ok", "database": "ok", "jobs_in_flight": 0})
    status, job = _get(f"{base}/v1/generations", key, {"prompt": "A paper lantern", "duration_s": 1})
    assert status == 202, job
    while time.monotonic() < deadline:
        status, job = _get(f"{base}/v1/generations/{job['id']}", key)
        if job["status"] not in {"queued", "running"}:
            break
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    assert job["video"]["model_family"] == "ltx2"
