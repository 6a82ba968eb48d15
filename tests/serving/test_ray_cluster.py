"""Kinora on a multi-node Ray cluster: Serve, the HTTP API, the campaign flow and the Ray Data batch campaign.

The cluster (``ray.cluster_utils.Cluster``: a head and two worker nodes on 127.0.0.1, one advertising
two GPUs as a logical resource) lives in a process of its own, ``ray_cluster_run.py``: Ray allows one
driver connection per process and this session may already hold a local Ray. The helper writes what
it saw as JSON; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).resolve().parent / "ray_cluster_run.py"


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on loopback now (fixed ones could be held by what an earlier test left behind)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (our cluster's private temp folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return [p for p in pids if p != os.getpid()]


@pytest.fixture(scope="module")
def cluster_run():
    """Run the helper once for the module; whatever happens, nothing of its cluster is left running."""
    tmp = Path(tempfile.mkdtemp(prefix="krc-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    serve_port, metrics_port = _free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINORA_", "RAY_", "PREFECT_"))}
    env.update({
        "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": str(tmp),
        "RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "1.0",
        "KINORA_HOME": str(tmp / "home"), "KINORA_SERVE__PORT": str(serve_port),
        "KINORA_SERVE__METRICS_EXPORT_PORT": str(metrics_port), "KINORA_GENERATION__NUM_GPUS": "1",
        "PREFECT_HOME": str(tmp / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING", "TOKENIZERS_PARALLELISM": "false",
    })
    out = tmp / "result.json"
    t0 = time.perf_counter()
    log_file = tmp / "helper.log"  # a file, not a pipe: a stray Ray process holding a pipe would block the read
    with log_file.open("w") as log_out:
        proc = subprocess.Popen([sys.executable, str(HELPER), str(out)], cwd=ROOT, env=env, stdout=log_out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.perf_counter() - t0
    log = log_file.read_text(errors="replace")
    time.sleep(0.5)
    leftovers = _pids_mentioning(str(tmp))
    for pid in leftovers:  # only processes of this cluster: their command lines name its private folder
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    result = (json.loads(out.read_text()) if out.is_file()
              else {"ok": False, "error": "no result written; the helper's log ends:\n" + log[-4000:]})
    result.update(rc=proc.returncode, log_tail=log[-4000:], wall_s=wall, leftover_pids=leftovers, serve_port=serve_port)
    print(f"cluster helper: {wall:.1f} s; stages (s):", {k: round(v, 1) for k, v in result.get("timings", {}).items()})
    yield result
    shutil.rmtree(tmp, ignore_errors=True)


def test_the_cluster_has_three_nodes_on_loopback_one_with_gpus(cluster_run):
    r = cluster_run
    assert r["ok"] and r["rc"] == 0, r.get("error") or r["log_tail"]
    host, port = r["address"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) != 6379  # the Cluster picked the GCS port itself; Redis keeps 6379
    nodes = {n["node_id"]: n for n in r["nodes"]}
    assert set(nodes) == {r["head_node_id"], r["gpu_node_id"], r["cpu_node_id"]}
    assert all(n["alive"] and n["ip"] == "127.0.0.1" and n["cpus"] == 1 for n in nodes.values())
    assert {k: n["gpus"] for k, n in nodes.items()} == {r["head_node_id"]: 0, r["gpu_node_id"]: 2, r["cpu_node_id"]: 0}
    assert r["leftover_pids"] == []  # the helper's shutdown took every node down


def test_the_generator_replica_lands_on_the_gpu_node_and_reserves_a_gpu(cluster_run):
    r = cluster_run
    assert r["ok"], r.get("error") or r["log_tail"]
    assert r["serve_status"] == {"app": "ApplicationStatus.RUNNING",
                                 "deployments": {"VideoGenerator": "DeploymentStatus.HEALTHY",
                                                 "KinoraApi": "DeploymentStatus.HEALTHY"}}
    actors = r["serve_actors"]
    assert actors["ServeReplica:kinora:VideoGenerator"] == [r["gpu_node_id"]]
    assert len(actors["ServeReplica:kinora:KinoraApi"]) == 1
    # Serve's default proxy_location: an HTTP proxy on the head and on each node holding a replica, all healthy
    replica_nodes = set(actors["ServeReplica:kinora:VideoGenerator"] + actors["ServeReplica:kinora:KinoraApi"])
    assert set(actors["ProxyActor"]) == {r["head_node_id"]} | replica_nodes
    assert r["proxies"] == {n: "ProxyStatus.HEALTHY" for n in actors["ProxyActor"]}
    # generation.num_gpus = 1 became the replica's ray_actor_options: one of the node's two GPUs is taken
    assert r["gpus_free_per_node"] == {r["head_node_id"]: 0.0, r["gpu_node_id"]: 1.0, r["cpu_node_id"]: 0.0}


def test_a_post_over_serve_http_succeeds_end_to_end(cluster_run):
    r = cluster_run
    assert r["ok"], r.get("error") or r["log_tail"]
    assert r["healthz"] == [200, {"status": "ok", "database": "ok", "jobs_in_flight": 0}]
    assert r["post_status"] == 202
    job = r["job"]
    assert job["status"] == "succeeded", job
    video = job["video"]
    assert video["url"].startswith(f"http://127.0.0.1:{r['serve_port']}/v1/videos/")
    assert (video["model_family"], video["duration_s"], video["creator"]) == ("ltx2", 1.0, "alice")
    assert video["provenance"]["c2pa_state"] == "Trusted"


def test_the_campaign_flow_publishes_through_the_cluster(cluster_run):
    r = cluster_run
    assert r["ok"], r.get("error") or r["log_tail"]
    s = r["campaign"]
    assert (s["requested"], s["generated"], s["published"], s["blocked_consent"], s["failed"]) == (3, 2, 2, 1, 0)
    assert [x["reason"] for x in s["refusals"]] == ["unknown cameo @zed"]
    stats = r["generator_stats"]  # the one replica on the GPU node made the API's clip and the campaign's two
    assert sum(stats["batch_sizes"]) == 3
    assert r["videos_by_campaign"]["cluster-serve"] == 2
    assert r["videos_by_campaign"]["None"] == 1  # the API request's video


def test_the_ray_data_campaign_runs_its_actor_pool_on_the_gpu_node(cluster_run):
    r = cluster_run
    assert r["ok"], r.get("error") or r["log_tail"]
    b = r["batch"]
    assert (b["requested"], b["generated"], b["published"], b["blocked_rights"], b["failed"]) == (3, 2, 2, 1, 0)
    assert b["engine"] == "ray-data" and b["actors"] == 1 and b["num_gpus_per_actor"] == 1.0
    assert b["nodes"] == {r["gpu_node_id"]: 2}  # the actor reserved the GPU the Serve replica left free
    assert b["devices"] == ["cpu"]  # a logical GPU only: torch stayed on the CPU
    assert b["videos_per_s"] > 0 and b["videos_per_s"] == pytest.approx(b["published"] / b["total_seconds"], rel=0.01)
    assert r["videos_by_campaign"]["cluster-batch"] == 2
