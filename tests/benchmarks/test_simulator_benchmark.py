"""benchmarks/simulator.py at a small scale: it makes the events it promises and the closed loop
separates the oracle from chance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_run_reports_speed_baseline_and_closed_loop():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "simulator.py"), "--events", "50000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["speed"]["events"] >= 50_000 and out["speed"]["events_per_s"] > 0
    assert out["baseline_python_loop"]["events"] > 0 and out["ratio"] > 0
    assert out["closed_loop"]["views_ratio"] > 1.5 and out["closed_loop"]["likes_ratio"] > 2
    assert out["goals_met"]["seconds_for_1m_events"] is None  # not measured at this size
