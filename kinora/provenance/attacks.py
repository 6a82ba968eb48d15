"""The edits a re-uploader makes to a video, as the provenance issue lists them: each takes decoded
frames and returns the frames of the re-encoded result (H.264 through PyAV, as a platform would).
Used by the watermark tests and ``benchmarks/provenance.py``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from kinora.settings import MediaSettings
from models.media import encode_mp4, read_frames


def reencode(frames: np.ndarray, crf: int = 23, fps: int = 24) -> np.ndarray:
    """H.264 (libx264, yuv420p) at ``crf``, decoded back."""
    with tempfile.TemporaryDirectory(prefix="kinora-attack-") as tmp:
        path = Path(tmp) / "a.mp4"
        encode_mp4(frames, None, fps=fps, sample_rate=48_000, out_path=path, settings=MediaSettings(crf=crf))
        return read_frames(path)


def resize(frames: np.ndarray, factor: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    size = (max(2, round(w * factor / 2) * 2), max(2, round(h * factor / 2) * 2))  # even: yuv420p
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC)) for f in frames])


def crop_edges(frames: np.ndarray, fraction: float) -> np.ndarray:
    """Cut ``fraction`` of the height and of the width, half from each edge (0.10 keeps the middle 90%)."""
    h, w = frames.shape[1:3]
    dy, dx = round(h * fraction / 2), round(w * fraction / 2)
    out = frames[:, dy:h - dy, dx:w - dx]
    return out[:, : out.shape[1] // 2 * 2, : out.shape[2] // 2 * 2]


def brightness(frames: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.rint(frames.astype(np.float32) * factor), 0, 255).astype(np.uint8)


def trim(frames: np.ndarray, start_s: float, seconds: float, fps: int = 24) -> np.ndarray:
    return frames[round(start_s * fps): round((start_s + seconds) * fps)]


def flip_media_byte(path: Path) -> None:
    """Tamper in place: invert one byte in the middle of the MP4's ``mdat`` box (the coded media)."""
    data = bytearray(Path(path).read_bytes())
    offset = 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset:offset + 4], "big"), bytes(data[offset + 4:offset + 8])
        if kind == b"mdat":
            data[offset + size // 2] ^= 0xFF
            Path(path).write_bytes(bytes(data))
            return
        if size < 8:
            break
        offset += size
    raise ValueError(f"{path}: no mdat box")


ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reencode_crf23": lambda f: reencode(f, 23),
    "reencode_crf28": lambda f: reencode(f, 28),
    "downscale_half": lambda f: reencode(resize(f, 0.5), 23),
    "crop_10pct_edges": lambda f: reencode(crop_edges(f, 0.10), 23),
    "brightness_plus_20pct": lambda f: reencode(brightness(f, 1.2), 23),
    "brightness_minus_20pct": lambda f: reencode(brightness(f, 0.8), 23),
    "trim_2s_window": lambda f: reencode(trim(f, max(0.0, (len(f) / 24 - 2) / 2), 2.0), 23),
}
