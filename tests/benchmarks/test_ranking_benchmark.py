"""benchmarks/ranking.py at a small scale: every part runs and reports what it promises."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quick_run_reports_training_baselines_closed_loop_feed_and_reload():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ranking.py"), "--quick", "--events", "120000",
                           "--seconds", "3", "--port", str(_free_port())], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["events"] >= 100_000 and out["train"]["wall_s"] > 0
    assert set(out["offline"]["baselines_ndcg@10"]) == {"most_popular", "recent_popular", "lightgbm_lambdarank"}
    assert out["offline"]["kinora_ndcg@10"] > out["offline"]["baselines_ndcg@10"]["most_popular"]
    loop = out["closed_loop"]
    assert loop["kinora"]["views"] > loop["random"]["views"] and loop["watch_ratio_vs_random"] > 1.1
    feed = out["feed_http"]
    assert feed["requests"] > 0 and feed["failed"] == 0 and feed["candidates_per_request"] == 1000
    assert feed["baseline_http_newest_first"]["requests_per_s"] > 0
    reload = out["hot_reload"]
    assert reload["failed"] == 0 and reload["switches"] >= 1
    assert out["goals_met"]["train_wall_under_600_s"] is None  # not measured at this size
