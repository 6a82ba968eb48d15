"""Benchmark: a realistic-size generator (real LTX-2 or Wan layer sizes, random weights) on one device.

    .venv/bin/python benchmarks/generation.py --device cuda --preset ltx2-19b
    .venv/bin/python benchmarks/generation_preset.py --device cuda --preset wan2.1-1.3b [--batch 2] [--runs 2]

``benchmarks/generation.py`` hands any ``--preset`` other than ``tiny`` to this script. Presets are
in :mod:`models.generation.presets` (``ltx2-19b``, ``wan2.1-1.3b``, ``wan2.1-14b``): the diffusers
pipeline classes Kinora serves, built at the real sizes directly on the device in bfloat16 with
random weights. Text encoders are left out (random ``prompt_embeds`` of the real shape are fed
instead; they run once per prompt, not per step), and so is the Wan family's separate audio model.

Measured: one warm-up call (1 step), then ``--runs`` calls at batch 1 (the baseline) and at batch
``--batch``, alternating. Figures: frames per second (clips x frames / seconds of the pipeline call,
denoising + VAE decode + vocoder), seconds per clip, and peak GPU memory per batch size
(``torch.cuda.max_memory_allocated``). ratio = batched frames/s over batch-1 frames/s.

The output is noise; these figures describe the architecture's cost at this resolution, frame
count, step count and guidance, not a trained model's quality. ``--num-layers N`` shrinks the
transformer's depth (everything else real) to check the code path on a machine without the
memory for the full model; a result with it is marked ``"reduced": true`` and is not a figure of
the preset. Progress goes to stderr; the last stdout line is one JSON object. Exits 0 when it
measured, 1 on an error, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def log(msg: str) -> None:
    print(f"[preset-bench] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from models.generation.presets import PRESETS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--device", default="cuda", help="torch device (cuda, cuda:1, cpu)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--batch", type=int, default=2, help="clips per call for the batched measurement")
    p.add_argument("--runs", type=int, default=2, help="timed calls per batch size")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the preset's)")
    p.add_argument("--resolution", default=None, help="WxH (default: the preset's)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the preset's)")
    p.add_argument("--num-layers", type=int, default=None, help="shrink transformer depth (code-path check only)")
    a = p.parse_args(argv)
    if a.batch < 2 or a.runs < 1:
        p.error("--batch must be at least 2 and --runs at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    try:
        a = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    import torch

    from models.generation.presets import PRESETS, build_pipeline, parameter_counts, run_once

    preset = PRESETS[a.preset]
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {a.device}: no CUDA device on this machine", file=sys.stderr)
        return 2
    dtype = getattr(torch, a.dtype)
    width, height = preset.width, preset.height
    if a.resolution:
        try:
            width, height = (int(v) for v in a.resolution.lower().split("x"))
        except ValueError:
            print(f"error: --resolution {a.resolution!r}: expected WxH, e.g. 768x512", file=sys.stderr)
            return 2
    frames = a.frames or preset.num_frames
    steps = a.steps or preset.steps
    shape = dict(height=height, width=width, num_frames=frames)

    try:
        counts = parameter_counts(preset)
        log(f"building {preset.name} on {device} in {a.dtype} ({sum(counts.values()) / 1e9:.2f}B parameters)")
        t0 = time.perf_counter()
        pipe = build_pipeline(preset, device, dtype=dtype, num_layers=a.num_layers)
        build_s = time.perf_counter() - t0
        log(f"built in {build_s:.1f} s; warm-up call (1 step)")
        warm = run_once(pipe, preset, 1, device, dtype, steps=1, **shape)
        times: dict[int, list[float]] = {1: [], a.batch: []}
        peak: dict[int, float | None] = {1: None, a.batch: None}
        out_shape: dict[int, list[int]] = {}
        for r in range(a.runs):
            for batch in (1, a.batch) if r % 2 == 0 else (a.batch, 1):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                res = run_once(pipe, preset, batch, device, dtype, steps=steps, **shape)
                times[batch].append(res["seconds"])
                out_shape[batch] = res["video_shape"]
                if device.type == "cuda":
                    peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
                    peak[batch] = round(max(peak[batch] or 0.0, peak_gib), 2)
                log(f"batch {batch}: {res['seconds']:.2f} s, video {res['video_shape']}, audio {res['audio_shape']}")
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"error: benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    def figures(batch: int) -> dict:
        seconds = statistics.median(times[batch])
        return {
            "batch": batch,
            "seconds_per_call_median": round(seconds, 3),
            "seconds_per_clip": round(seconds / batch, 3),
            "frames_per_s": round(batch * frames / seconds, 3),
            "peak_gpu_memory_gib": peak[batch],
            "video_shape": out_shape[batch],
        }

    single, batched = figures(1), figures(a.batch)
    result = {
        "benchmark": "generation_preset",
        "reduced": a.num_layers is not None,
        "config": {
            **preset.describe(),
            "resolution": f"{width}x{height}",
            "num_frames": frames,
            "steps": steps,
            "num_layers": a.num_layers,
            "dtype": a.dtype,
            "runs": a.runs,
            "excluded": ["text encoder (random prompt_embeds of the real shape)"]
            + (["text-to-audio model"] if preset.family == "wan" else []),
        },
        "machine": {
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "torch": torch.__version__,
        },
        "parameters_b": {k: round(v / 1e9, 3) for k, v in counts.items()},
        "setup_seconds": {"build": round(build_s, 1), "warmup_call": round(warm["seconds"], 1)},
        "figures": {
            "frames_per_s": batched["frames_per_s"],
            "baseline_frames_per_s_batch1": single["frames_per_s"],
            "ratio_batched_over_batch1": round(batched["frames_per_s"] / single["frames_per_s"], 3),
            "batch1": single,
            f"batch{a.batch}": batched,
        },
    }
    log(f"{preset.name}: {single['frames_per_s']} frames/s at batch 1, {batched['frames_per_s']} at batch {a.batch}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
