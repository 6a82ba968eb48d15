"""benchmarks/load.py, shortened: mixed load on a Serve app on its own Ray head, then every fault
(generator replica, ingress replica, database connections, a campaign flow run killed and rerun),
and its report of what was lost. On PostgreSQL where a server answers (its connections are cut)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_load_with_every_fault_loses_nothing_and_leaves_nothing_stuck():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINORA_", "RAY_ADDRESS"))}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--duration", "10", "--warmup", "3",
                           "--campaign-size", "3", "--event-rate", "3", "--event-batch", "50"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [f["fault"] for f in report["faults"]] == ["generator_replica", "ingress_replica", "database_connections",
                                                      "flow_run"]
    lost = report["lost"]
    assert lost["events_accepted"] >= 1000 and lost["jobs_accepted"] >= 5
    assert lost["events_missing_from_store"] == 0 and lost["events_missing_from_lake"] == 0
    assert lost["event_rows_stored_twice"] == 0  # every tenth batch was delivered twice
    assert lost["jobs_missing"] == 0 and lost["jobs_stuck"] == 0
    assert set(lost["job_states"]) <= {"succeeded", "failed"}
    assert lost["campaign_published"] == 3 and lost["campaign_published_twice"] == 0 and lost["campaign_jobs_open"] == 0
    assert "rerun skipped" in report["faults"][3]["detail"]
    assert report["sustained"]["errors"] == 0, report["sustained"]
    assert report["sustained"]["streams"]["feed"]["ok"] > 0 and report["sustained"]["memory_mb"]["first"] > 0
    if report["store"] == "postgresql":
        assert report["faults"][2]["detail"].startswith("terminated ")
