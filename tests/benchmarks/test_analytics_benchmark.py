"""benchmarks/analytics.py at a small scale: every page timed in the three engines, the engines
agree on the numbers, the refresh is incremental."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_run_times_every_page_in_three_engines_that_agree(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "analytics.py"), "--events", "40000", "--days", "5",
                           "--requests", "40", "--repeats", "1", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out["pages"]) == {"overview", "feed", "retention", "content", "campaigns", "trust", "ranking"}
    for page, row in out["pages"].items():
        assert row["duckdb_s"] > 0 and row["polars_s"] > 0 and row["pandas_s"] > 0, page
        assert row["polars_over_duckdb"] > 0 and row["pandas_over_duckdb"] > 0
    assert out["agree_with_duckdb"] == {"duckdb": True, "polars": True, "pandas": True}, out["checks"]
    assert out["checks"]["feed_views"] > 0 and out["checks"]["requested"] == 40 and out["checks"]["versions"] == 5
    assert out["refresh"]["incremental_days_rebuilt"] in (1, 2)  # the new day (and the one it spills into)
    assert out["setup"]["event_rows_written"] >= 35_000
    raw = out["without_rollups_feed_daily_from_raw"]
    assert raw["duckdb_s"] > 0 and raw["polars_s"] > 0 and raw["pandas_s"] > 0
    assert out["goal"].startswith("every page under 1 s") and isinstance(out["goal_met"], bool)
    assert not (tmp_path / "40000").exists()  # the lake is removed unless --keep
