"""Smoke test of benchmarks/generation.py: it runs with --quick and its last stdout line is the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "generation.py"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINORA_", "RAY_ADDRESS"))}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_unknown_preset_exits_2_naming_the_choices():
    done = _run("--preset", "local", timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "invalid choice: 'local'" in done.stderr and "ltx2-19b" in done.stderr


def test_realistic_preset_runs_reduced_on_cpu_and_reports_frames_per_second():
    """The realistic-size path end to end on CPU: real Wan 2.1 1.3B widths, depth cut to one layer."""
    done = _run("--preset", "wan2.1-1.3b", "--device", "cpu", "--num-layers", "1", "--steps", "1",
                "--resolution", "64x64", "--frames", "5", "--runs", "1", timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["reduced"] is True  # a shrunk run never passes for a figure of the preset
    assert out["parameters_b"]["transformer"] == pytest.approx(1.419, abs=0.01)
    f = out["figures"]
    assert f["batch1"]["video_shape"] == [1, 5, 64, 64, 3]
    assert f["batch2"]["video_shape"] == [2, 5, 64, 64, 3]
    assert f["frames_per_s"] == pytest.approx(2 * 5 / f["batch2"]["seconds_per_call_median"], rel=1e-2)
    assert f["ratio_batched_over_batch1"] == pytest.approx(
        f["frames_per_s"] / f["baseline_frames_per_s_batch1"], rel=1e-2)
    assert f["batch1"]["peak_gpu_memory_gib"] is None  # CPU: no GPU figure is made up


def test_cuda_preset_without_a_gpu_exits_2():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the no-GPU message cannot be checked here")
    done = _run("--preset", "ltx2-19b", "--device", "cuda", timeout=60)
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and done.stdout == ""


@pytest.mark.e2e
def test_quick_run_prints_the_figures_as_json():
    done = _run("--quick", timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["goals"] == {"serve_overhead_pct_max": 5, "batching_gain_min": 1.3}
    assert set(out["met"]) == {"serve_overhead", "serve_added", "batching_gain"}
    assert all(isinstance(v, bool) for v in out["met"].values())
    f = out["figures"]
    one = f["serve_handle_c1"]["max_batch_size_1"]
    # Serve's own time is what a handle call took beyond the replica's own generate() call: positive, and
    # well under the call (a handle latency below the replica's own seconds would mean mixed-up clocks).
    assert 0 < one["serve_added_p50_s"] < one["p50_s"] / 2
    assert one["generator_busy_p50_s"] < one["p50_s"]
    assert out["met"]["serve_added"] == (one["serve_added_pct_of_direct"] <= 5)
    for level in ("c1", "c4", "c16"):
        http = f["http"][level]
        assert http["videos_per_s"] > 0
        assert 0 < http["p50_s"] <= http["p99_s"]
    assert f["http"]["c16"]["n"] >= 16
    assert f["direct"]["videos_per_s"] > 0 and f["direct"]["p50_s"] > 0
    assert isinstance(f["serve_overhead_pct"], float)
    b = f["batching"]
    assert b["batched_videos_per_s"] > 0 and b["unbatched_videos_per_s"] > 0
    assert b["ratio"] == pytest.approx(b["batched_videos_per_s"] / b["unbatched_videos_per_s"], rel=1e-2)
    s = out["setup"]
    assert s["quick"] is True and s["preset"] == "tiny" and s["resolution"] == "256x256"
    assert s["frames"] == 24 and s["pipeline_frames"] == 25
