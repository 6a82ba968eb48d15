"""Benchmark: the invisible watermark under every attack of the provenance issue, false detections,
embedding quality, and stamping speed.

    .venv/bin/python benchmarks/provenance.py [--size 854x480] [--clips 6] [--seconds 3]
                                              [--fp-trials 1000] [--no-stamp]

* ``attacks``: ``--clips`` synthetic panning clips (:mod:`models.synthetic`, a different picture
  per seed) of ``--seconds`` at ``--size``, each marked with a random 48-bit content id and
  published (H.264 CRF 23, as stamping does); then every attack of
  :data:`kinora.provenance.attacks.ATTACKS` (re-encode CRF 23 and 28, half size, 10% cropped at
  the edges, brightness +/-20%, a 2-second window; each re-encoded). Per attack: the mean and worst
  bit accuracy of the 128 coded bits at the detector's alignment, and the detection rate (the
  decoded id equals the embedded one). Goals: bit accuracy >= 0.95 and detection >= 0.99 under
  every attack. Baseline in the same run: the published file with no attack.
* ``false_detection``: ``--fp-trials`` unmarked clips (8 frames each, own pictures, published at
  CRF 23) read by the detector: how many decode to any id, next to the code's bound
  (:data:`kinora.provenance.watermark.FALSE_POSITIVE_BOUND`). Goal: under 1e-6 by the bound; the
  trials show the bound is not contradicted (at 1,000 trials they can only show < ~3e-3).
* ``psnr``: marked against unmarked frames, before encoding. Goal: >= 38 dB.
* ``audio``: ``--audio-clips`` soundtracks per duration (2, 5 and 10 s; held chords with tremolo
  and a little noise, the hard case for a static mark) marked with a random content id and encoded
  as AAC at 96 kbit/s: detection rate and bit accuracy per duration, and the signal-to-watermark
  ratio. Best effort (the issue asks to measure and report).
* ``stamping``: one 10-second 720p24 clip with sound through :func:`kinora.provenance.stamp.stamp_clip`
  (visible mark, invisible mark, H.264+AAC encode, C2PA sign, read-back checks, store), against
  the same encode alone in the same run. Goal: at most 10 s (real time) on 2 cores.

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _attacks(args, rng) -> tuple[dict, dict]:
    from kinora.provenance import watermark as wm
    from kinora.provenance.attacks import ATTACKS, reencode
    from models.synthetic import panning_clip

    w, h = (int(v) for v in args.size.split("x"))
    frames = round(args.seconds * 24)
    results: dict[str, dict[str, list]] = {name: {"acc": [], "ok": []} for name in ["none", *ATTACKS]}
    psnrs = []
    for clip in range(args.clips):
        raw = panning_clip(h, w, frames, seed=1000 + clip)
        cid = int(rng.integers(0, 2**48))
        marked = wm.embed(raw, cid)
        psnrs.append(wm.psnr(raw, marked))
        published = reencode(marked, 23)
        for name, attack in [("none", lambda f: f), *ATTACKS.items()]:
            attacked = attack(published)
            found = wm.detect(attacked)
            results[name]["ok"].append(found.content_id == cid)
            results[name]["acc"].append(wm.bit_accuracy(attacked, cid))
        print(f"clip {clip + 1}/{args.clips}: " + ", ".join(f"{k} {v['acc'][-1]:.3f}{'' if v['ok'][-1] else ' MISS'}"
                                                           for k, v in results.items()), file=sys.stderr)
    out = {name: {"bit_accuracy_mean": round(float(statistics.mean(v["acc"])), 4), "bit_accuracy_min": round(float(min(v["acc"])), 4),
                  "detection_rate": round(sum(v["ok"]) / len(v["ok"]), 4), "clips": len(v["ok"])}
           for name, v in results.items()}
    return out, {"mean_db": round(float(statistics.mean(psnrs)), 2), "min_db": round(float(min(psnrs)), 2)}


def _false_detection(trials: int, size: str) -> dict:
    from kinora.provenance import watermark as wm
    from kinora.provenance.attacks import reencode
    from models.synthetic import panning_clip

    w, h = (int(v) for v in size.split("x"))
    hits = 0
    t0 = time.perf_counter()
    for i in range(trials):
        if wm.detect(reencode(panning_clip(h, w, 8, seed=50_000 + i), 23)).content_id is not None:
            hits += 1
    return {"trials": trials, "false_detections": hits, "observed_rate": hits / trials,
            "bound_per_file": wm.FALSE_POSITIVE_BOUND, "seconds": round(time.perf_counter() - t0, 1)}


def music_like(seconds: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 48_000)) / 48_000
    x = sum(rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
            for f in rng.uniform(100, 3000, 8))
    x = x + 0.02 * rng.normal(size=t.size)
    return (0.5 * np.stack([x, x])).astype(np.float32)


def _audio(clips: int, rng) -> dict:
    import numpy as np

    from kinora.provenance import audio_watermark as aw
    from kinora.settings import MediaSettings
    from models.media import encode_mp4

    out = {}
    for seconds in (2.0, 5.0, 10.0):
        ok, acc, snr = [], [], []
        for i in range(clips):
            cid = int(rng.integers(0, 2**48))
            plain = music_like(seconds, seed=int(seconds * 100) + i)
            marked = aw.embed_audio(plain, 48_000, cid)
            snr.append(aw.snr_db(plain, marked))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "a.mp4"
                frames = np.zeros((round(seconds * 24), 64, 64, 3), np.uint8)
                encode_mp4(frames, marked, fps=24, sample_rate=48_000, out_path=path,
                           settings=MediaSettings(audio_bitrate=96_000))
                pcm, rate = aw.read_audio(path)
            ok.append(aw.detect_audio(pcm, rate).content_id == cid)
            acc.append(aw.audio_bit_accuracy(pcm, rate, cid))
        out[f"{seconds:g}s_aac96"] = {"detection_rate": round(sum(ok) / clips, 3), "bit_accuracy_mean": round(float(np.mean(acc)), 4),
                                      "bit_accuracy_min": round(float(min(acc)), 4), "snr_db_mean": round(float(np.mean(snr)), 1),
                                      "clips": clips}
        print(f"audio {seconds:g}s: {out[f'{seconds:g}s_aac96']}", file=sys.stderr)
    return out


def _stamping() -> dict:
    import numpy as np

    from kinora.provenance.certs import load_signer_material
    from kinora.settings import Settings
    from kinora.stores.media import MediaStore
    from models.generation.types import Clip
    from models.media import encode_mp4
    from models.synthetic import panning_clip

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="kinora-prov-bench-")))
    material = load_signer_material(settings.provenance, settings.cert_dir)
    frames = panning_clip(720, 1280, 240, seed=7)
    t = np.arange(10 * 48_000) / 48_000
    audio = np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    clip = Clip(frames=frames, audio=audio, sample_rate=48_000, fps=24, seed=7, model_family="ltx2",
                model_version="benchmark", timings={})
    from kinora.provenance.stamp import stamp_clip

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        encode_mp4(frames, audio, fps=24, sample_rate=48_000, out_path=Path(tmp) / "plain.mp4", settings=settings.media)
    encode_only = time.perf_counter() - t0
    t0 = time.perf_counter()
    stamped = stamp_clip(clip, request_id="req_bench", creator_handle="bench", title="benchmark", consent_hash="0" * 64,
                         rights_hash="0" * 64, media=MediaStore(settings.media_dir), material=material, settings=settings)
    seconds = time.perf_counter() - t0
    return {"clip": "10 s 720p24 with stereo sound", "seconds": round(seconds, 2),
            "stages": {k: round(v, 2) for k, v in stamped.timings.items()},
            "baseline_encode_only_seconds": round(encode_only, 2), "ratio_to_encode_only": round(seconds / encode_only, 2),
            "watermark_read_back": stamped.watermark, "c2pa_state": stamped.c2pa_state}


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="854x480", help="WxH of the attack clips (480p: the smallest real preset).")
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fp-trials", type=int, default=1000)
    p.add_argument("--no-stamp", action="store_true", help="Skip the 720p stamping measurement.")
    p.add_argument("--audio-clips", type=int, default=8, help="Soundtracks per duration for the audio figures (0: skip).")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    rng = np.random.default_rng(12345)
    attacks, psnr = _attacks(args, rng)
    fp = _false_detection(args.fp_trials, args.size)
    audio = _audio(args.audio_clips, rng) if args.audio_clips else None
    stamping = None if args.no_stamp else _stamping()
    worst_acc = min(v["bit_accuracy_min"] for v in attacks.values())
    worst_det = min(v["detection_rate"] for v in attacks.values())
    out = {
        "benchmark": "provenance", "size": args.size, "seconds": args.seconds, "attacks": attacks, "psnr": psnr,
        "false_detection": fp, "audio": audio, "stamping_720p_10s": stamping,
        "goals": {"bit_accuracy": 0.95, "detection_rate": 0.99, "false_detection_bound": 1e-6, "psnr_db": 38,
                  "stamping_seconds": 10},
        "goals_met": {"bit_accuracy": bool(worst_acc >= 0.95), "detection_rate": bool(worst_det >= 0.99),
                      "false_detection": bool(fp["bound_per_file"] < 1e-6 and fp["false_detections"] == 0),
                      "psnr": bool(psnr["min_db"] >= 38), "stamping": None if stamping is None else bool(stamping["seconds"] <= 10)},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
