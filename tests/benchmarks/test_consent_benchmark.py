"""benchmarks/consent.py at a small scale: it measures every figure, and what it measures is real
(decisions agree with one-at-a-time checks, the revoked and lapsed videos are gone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "consent.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINORA_")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_small_run_reports_every_figure_with_its_baseline():
    done = _run("--cameos", "2000", "--grants", "20000", "--requests", "1000", "--baseline-requests", "200",
                "--affected", "300", "--videos", "1000", "--baseline-videos", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["data"]["cameo_approvals"] == 20000 and out["data"]["cameos"] == 2002
    checks = out["checks"]
    assert checks["requests"] == 1000 and checks["decisions_match_baseline"] is True
    assert 0 < checks["refused"] < 1000 and checks["allowed"] + checks["refused"] == 1000
    assert checks["ratio"] > 0 and checks["baseline"]["requests"] == 200
    assert {"only_me", "approved", "mutual", "revoked", "restricts"} <= {
        word for reason in out["reasons"] for word in ("only_me", "approved", "mutual", "revoked", "restricts") if word in reason}
    rev = out["revocation"]
    assert rev["videos_withdrawn"] == 300 and rev["affected_in_next_page"] == 0
    lapse = out["serve_time_lapse"]
    assert lapse["withheld"] == 300 and lapse["affected_served"] == 0
    sweep = out["sweep"]
    assert sweep["live_videos_checked"] == 700 and sweep["lapsed"] == 300 and sweep["unpublished"] == 300
    assert sweep["baseline"]["extrapolated"] is True


def test_bad_sizes_exit_2():
    done = _run("--videos", "10", "--affected", "100")
    assert done.returncode == 2 and "--videos" in done.stderr and done.stdout == ""
