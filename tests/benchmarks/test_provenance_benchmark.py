"""benchmarks/provenance.py at a small scale: every figure is measured and sane (the marked clips
are read under every attack, unmarked ones are not, the stamp is checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "provenance.py"


def test_small_run_reports_every_figure():
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINORA_")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--size", "384x384", "--clips", "1", "--seconds", "2",
                           "--fp-trials", "5", "--audio-clips", "1", "--no-stamp"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    attacks = out["attacks"]
    assert set(attacks) == {"none", "reencode_crf23", "reencode_crf28", "downscale_half", "crop_10pct_edges",
                            "brightness_plus_20pct", "brightness_minus_20pct", "trim_2s_window"}
    for name, figures in attacks.items():
        assert figures["clips"] == 1 and figures["detection_rate"] == 1.0, (name, figures)
        assert 0.95 <= figures["bit_accuracy_min"] <= 1.0
    assert out["false_detection"]["trials"] == 5 and out["false_detection"]["false_detections"] == 0
    assert out["false_detection"]["bound_per_file"] < 1e-6
    assert 38 <= out["psnr"]["min_db"] < 40
    assert set(out["audio"]) == {"2s_aac96", "5s_aac96", "10s_aac96"}
    assert out["stamping_720p_10s"] is None and out["goals_met"]["stamping"] is None
