"""Synthetic clips that look more like video than a tiny model's noise, for watermark tests and
benchmarks: a large procedural picture (smooth gradients, blurred shapes of many sizes, sensor-like
grain) that the camera pans across. Deterministic for a seed; no model, no files.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def panning_clip(height: int, width: int, frames: int, seed: int = 0, grain: float = 4.0) -> np.ndarray:
    """uint8 RGB [frames, height, width, 3]: a pan over a picture twice the frame's size."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height * 2, width * 2
    yy, xx = np.mgrid[0:big_h, 0:big_w] / max(big_h, big_w)
    fx, fy, phase = rng.uniform(2, 8), rng.uniform(2, 6), rng.uniform(0, 6.3)
    base = 120 + 60 * np.sin(fx * xx + phase) * np.cos(fy * yy) + rng.uniform(-40, 40) * xx
    tint = rng.uniform(0.7, 1.3, 3)
    picture = Image.fromarray(np.clip(base[..., None] * tint, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(20, 60))):
        x, y = int(rng.integers(0, big_w)), int(rng.integers(0, big_h))
        r = int(rng.integers(4, max(5, big_h // 5)))
        box = [x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)(box, fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.5))))
    pixels = np.asarray(picture).astype(np.float32)
    dy, dx = rng.uniform(0.2, 1.0) * (big_h - height), rng.uniform(0.2, 1.0) * (big_w - width)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for i in range(frames):
        t = i / max(1, frames - 1)
        oy, ox = int(t * dy), int(t * dx)
        frame = pixels[oy:oy + height, ox:ox + width] + rng.normal(0, grain, (height, width, 3))
        out[i] = np.clip(frame, 0, 255)
    return out
