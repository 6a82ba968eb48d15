"""Benchmark: clips per second of the tiny LTX-2 generator, batched (as the Serve deployment
batches same-shaped requests) against one request per pipeline call (the baseline), in one run.

    .venv/bin/python benchmarks/generation.py [--batch 4] [--clips 8] [--duration 2] [--steps 3] [--threads 1]

Prints one JSON object as its last line: clips/s batched and one-at-a-time, their ratio, and
the setup. Random weights: this measures the pipeline's plumbing and the batching, not a real
model's speed (a real checkpoint on a GPU is set with KINORA_GENERATION__* settings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# -- config (overridable on the command line) -------------------------------------------
BATCH = 4  # requests per pipeline call, as @serve.batch would group them
CLIPS = 8  # clips generated per measured stage
DURATION_S = 2.0  # seconds per clip (48 frames at 24 fps)
STEPS = 3  # denoising steps
THREADS = 1  # torch intra-op threads (1 was fastest on 2 shared cores)
RESOLUTION = "256x256"
REPEATS = 3  # timed repeats per mode; the median is reported


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--clips", type=int, default=CLIPS)
    p.add_argument("--duration", type=float, default=DURATION_S)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--resolution", default=RESOLUTION)
    p.add_argument("--repeats", type=int, default=REPEATS)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.clips % a.batch:
        print(f"error: --clips ({a.clips}) must be a multiple of --batch ({a.batch})", file=sys.stderr)
        return 2

    import torch

    from kinora.settings import GenerationSettings
    from models.generation.ltx2 import LTX2Generator
    from models.generation.types import ClipRequest

    settings = GenerationSettings(
        num_inference_steps=a.steps, torch_threads=a.threads, device=a.device,
        resolutions=[a.resolution], default_resolution=a.resolution,
        max_batch_size=a.batch, max_ongoing_requests=max(8, a.batch),
    )
    gen = LTX2Generator.from_settings(settings)
    w, h = (int(x) for x in a.resolution.split("x"))
    requests = [ClipRequest(prompt=f"benchmark clip {i}", width=w, height=h, duration_s=a.duration, seed=i)
                for i in range(a.clips)]

    def sync() -> None:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    gen.generate(requests[: a.batch])  # burn-in: first call pays lazy initialisation
    gen.generate(requests[:1])
    sync()

    def run_batched() -> float:
        t0 = time.perf_counter()
        for i in range(0, a.clips, a.batch):
            gen.generate(requests[i : i + a.batch])
        sync()
        return time.perf_counter() - t0

    def run_single() -> float:
        t0 = time.perf_counter()
        for r in requests:
            gen.generate([r])
        sync()
        return time.perf_counter() - t0

    batched, single = [], []
    for _ in range(a.repeats):  # interleaved, so drift on a shared machine hits both alike
        single.append(run_single())
        batched.append(run_batched())
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    batched_cps, single_cps = a.clips / med(batched), a.clips / med(single)
    print(json.dumps({
        "figure": "clips_per_second_batched", "value": round(batched_cps, 3),
        "baseline": "clips_per_second_one_at_a_time", "baseline_value": round(single_cps, 3),
        "ratio": round(batched_cps / single_cps, 3), "units": "clips/s",
        "setup": {"model": gen.model_version, "device": a.device, "dtype": settings.dtype, "resolution": a.resolution,
                  "duration_s": a.duration, "frames": round(a.duration * settings.fps), "steps": a.steps,
                  "batch": a.batch, "clips": a.clips, "repeats": a.repeats, "threads": a.threads,
                  "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "seconds": {"batched": [round(x, 3) for x in batched], "one_at_a_time": [round(x, 3) for x in single]},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
