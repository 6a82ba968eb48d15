"""A Ray head on loopback in a process of its own, which other drivers join by address.

``ray start --head`` turns 127.0.0.1 into the machine's routable address (and defaults to port
6379, which Redis holds here), so a one-machine "cluster" for a benchmark or a test is a process
that keeps a loopback-only ``ray.init`` alive and prints its GCS address. Drivers then join with
``KINORA_SERVE__RAY_ADDRESS`` (or ``RAY_ADDRESS``), exactly as they would join a real cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator

_HEAD = """
import sys, time, ray
ray.init(num_cpus=int(sys.argv[2]), include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=sys.argv[1],
         object_store_memory=int(sys.argv[3]) * 1024 * 1024, log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
while True:
    time.sleep(1)
"""


@contextmanager
def loopback_head(*, env: dict[str, str] | None = None, num_cpus: int = 2, object_store_mb: int = 256,
                  cwd: str | None = None) -> Iterator[str]:
    """Start the head, yield its address (``127.0.0.1:PORT``), stop it (its whole process group) afterwards."""
    temp_dir = tempfile.mkdtemp(prefix="kr-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**(env if env is not None else os.environ), "RAY_AUTH_MODE": "disabled",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([sys.executable, "-c", _HEAD, temp_dir, str(num_cpus), str(object_store_mb)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        address = head.stdout.readline().strip()
        if not address.startswith("127.0.0.1:"):
            raise RuntimeError(f"the loopback Ray head did not start (printed {address!r})")
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
