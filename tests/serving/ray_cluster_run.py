"""Run by tests/serving/test_ray_cluster.py in a process of its own (one Ray driver per process).

Starts a local multi-node Ray cluster with ``ray.cluster_utils.Cluster``: a head and two worker
nodes on 127.0.0.1, one of them advertising GPUs as a logical resource (there is no GPU; torch
stays on the CPU because ``generation.device`` is ``cpu``). Then, through Kinora's normal code paths
with ``serve.ray_address`` naming the cluster and ``generation.num_gpus = 1``:

1. deploys the Serve application (``serving.runtime.start_serve``) and records where each replica
   runs and which node's GPUs are reserved;
2. makes one POST /v1/generations over Serve's HTTP and polls the job to its end;
3. runs the campaign flow (``flows.campaign.campaign``) against the cluster;
4. runs the Ray Data batch campaign (``flows.campaign_batch.campaign_batch``) on the same cluster.

Writes what it saw as JSON to ``argv[1]`` and always shuts the cluster down. The caller sets the
environment: RAY_AUTH_MODE=disabled, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (nodes bind loopback),
RAY_TMPDIR (a private folder: Cluster writes ``ray_current_cluster`` there, not in /tmp/ray where
another driver's ``ray.init()`` would find it), KINORA_HOME, PREFECT_HOME and the KINORA_SERVE__ ports.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

NODE_MB = 150  # object store per node
SERVE_CAMPAIGN = """name: cluster-serve
requester: studio
defaults: {duration_s: 1, resolution: 256x256, seed: 3}
items:
  - {id: harbour, prompt: A sunrise over a quiet harbour}
  - {id: boats, prompt: A paper boat sailing down a rainy street}
  - {id: zed, prompt: "@zed juggling oranges", cameos: [zed]}
"""
BATCH_CAMPAIGN = """name: cluster-batch
requester: studio
defaults: {duration_s: 1, resolution: 256x256, seed: 11}
items:
  - {id: valley, prompt: A green valley under drifting clouds}
  - {id: alice, prompt: "@alice dancing in the rain", cameos: [alice]}
  - {id: comet, prompt: Captain Comet surfing a giant wave at dusk}
"""


def _http(url: str, key: str | None = None, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers,
                                 method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"text": raw.decode(errors="replace")}


def _actors_by_class() -> dict[str, list[str]]:
    """Class name -> node ids of its live actors, from the GCS (the state API needs the dashboard)."""
    from ray._private import state

    out: dict[str, list[str]] = {}
    for info in state.actors(actor_state_name="ALIVE").values():
        out.setdefault(info["ActorClassName"], []).append(info["Address"]["NodeID"])
    return out


def _videos_by_campaign(settings) -> dict[str, int]:
    import sqlalchemy as sa

    from kinora.stores.bundle import Stores

    with Stores.open(settings).engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT campaign_id, count(*) FROM videos WHERE published_at IS NOT NULL "
                                    "GROUP BY campaign_id")).fetchall()
    return {str(c): n for c, n in rows}


def main(out_path: Path) -> None:
    result: dict = {"timings": {}, "ok": False}
    t_all = time.perf_counter()
    tmp = Path(os.environ["RAY_TMPDIR"])
    (tmp / "ray").mkdir(parents=True, exist_ok=True)

    from ray.cluster_utils import Cluster

    t0 = time.perf_counter()
    node = dict(num_cpus=1, object_store_memory=NODE_MB * 1024 * 1024, node_ip_address="127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args=dict(
        **node, include_dashboard=False, temp_dir=str(tmp / "ray"), dashboard_agent_listen_port=None,
        metrics_export_port=int(os.environ["KINORA_SERVE__METRICS_EXPORT_PORT"])))
    try:
        gpu_node = cluster.add_node(**node, num_gpus=2)
        cpu_node = cluster.add_node(**node)
        cluster.wait_for_nodes()
        result["timings"]["cluster_start"] = time.perf_counter() - t0
        result["address"] = cluster.address
        result["head_node_id"] = cluster.head_node.node_id
        result["gpu_node_id"] = gpu_node.node_id
        result["cpu_node_id"] = cpu_node.node_id
        os.environ["KINORA_SERVE__RAY_ADDRESS"] = cluster.address  # what an operator sets (or RAY_ADDRESS)
        run_scenario(result)
        result["ok"] = True
    except BaseException:  # noqa: BLE001 - reported to the test, then the cluster goes down
        result["error"] = traceback.format_exc()
    finally:
        t0 = time.perf_counter()
        import ray

        for stop in (ray.shutdown, cluster.shutdown):  # both, whatever the first does; the result is written anyway
            try:
                stop()
            except BaseException:  # noqa: BLE001 - reported after the scenario's own error, if it had one
                result["ok"] = False
                result["error"] = (result.get("error") or "") + f"while shutting down:\n{traceback.format_exc()}"
        result["timings"]["shutdown"] = time.perf_counter() - t0
        result["timings"]["total"] = time.perf_counter() - t_all
        out_path.write_text(json.dumps(result, indent=1, default=str))


def run_scenario(result: dict) -> None:
    import ray
    from ray import serve

    from serving.runtime import ensure_ray, start_serve  # first: sets Ray's env
    from kinora.auth import create_key
    from kinora.seed import seed
    from kinora.settings import load_settings
    from kinora.stores.bundle import Stores

    settings = load_settings()
    assert settings.serve.ray_address and settings.generation.num_gpus == 1, settings.redacted()
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
        key = create_key(conn=conn, user_handle="alice", name="cluster")[1]

    ensure_ray(settings)  # joins the cluster: serve.ray_address is set
    result["nodes"] = [{"node_id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": n["Alive"],
                        "gpus": n["Resources"].get("GPU", 0), "cpus": n["Resources"].get("CPU", 0)} for n in ray.nodes()]
    # start_serve as `kinora serve` runs it: Serve's default proxy_location (EveryNode) puts an HTTP proxy on the
    # head and on each node with a replica; on one machine they share 127.0.0.1:port (Serve binds with SO_REUSEPORT).
    t0 = time.perf_counter()
    start_serve(settings)
    base = settings.public_base_url
    deadline = time.monotonic() + 120
    health = (0, {})
    while time.monotonic() < deadline:
        try:
            health = _http(f"{base}/healthz")
            if health[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    result["timings"]["serve_start"] = time.perf_counter() - t0
    result["healthz"] = list(health)
    while True:  # proxies on replica nodes start after their replicas: wait for them to be healthy
        actors = {k: v for k, v in _actors_by_class().items() if k.startswith(("ServeReplica", "ProxyActor"))}
        proxies = {node: str(state) for node, state in serve.status().proxies.items()}
        replica_nodes = {n for k, v in actors.items() if k.startswith("ServeReplica") for n in v}
        if (replica_nodes <= set(proxies) and all(v.endswith("HEALTHY") for v in proxies.values())) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    result["serve_actors"], result["proxies"] = actors, proxies
    result["gpus_free_per_node"] = {n: r.get("GPU", 0.0) for n, r in ray._private.state.available_resources_per_node().items()}
    app = serve.status().applications[settings.serve.app_name]
    result["serve_status"] = {"app": str(app.status), "deployments": {d: str(s.status) for d, s in app.deployments.items()}}

    # one request through the HTTP API, end to end
    t0 = time.perf_counter()
    status, job = _http(f"{base}/v1/generations", key, {"prompt": "A lighthouse at dusk", "duration_s": 1})
    result["post_status"] = status
    while status == 202 or job.get("status") in {"queued", "running"}:
        if time.monotonic() > deadline + 60:
            break
        time.sleep(0.5)
        status, job = _http(f"{base}/v1/generations/{job['id']}", key)
        if job.get("status") not in {"queued", "running"}:
            break
    result["job"] = job
    result["timings"]["api_request"] = time.perf_counter() - t0

    # the campaign flow, then the Ray Data batch campaign, against the same cluster
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = settings.home
    (home / "serve.yaml").write_text(SERVE_CAMPAIGN)
    (home / "batch.yaml").write_text(BATCH_CAMPAIGN)
    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result["timings"]["prefect_start"] = time.perf_counter() - t0
        from flows.campaign import campaign
        from flows.campaign_batch import campaign_batch

        t0 = time.perf_counter()
        result["campaign"] = campaign(str(home / "serve.yaml")).model_dump(mode="json")
        result["timings"]["campaign"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result["batch"] = campaign_batch(str(home / "batch.yaml")).model_dump(mode="json")
        result["timings"]["batch"] = time.perf_counter() - t0
    result["generator_stats"] = serve.get_deployment_handle("VideoGenerator", app_name=settings.serve.app_name) \
        .stats.remote().result(timeout_s=30)
    result["videos_by_campaign"] = _videos_by_campaign(settings)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
