"""The visible watermark: "Kinora · @handle", semi-transparent, moving between the corners.

A mark that stays in one corner is removed by one crop or one blur box; one that moves every
``visible_moves_every_s`` seconds through all four corners survives any crop that keeps the
middle of the picture for the whole clip. The path is a fixed clockwise cycle (top-left,
top-right, bottom-right, bottom-left), so the same clip and handle always give the same
pixels, and :func:`plan_visible_watermark` tells tests and verifiers where the mark is on
every frame.

The text is drawn once with Pillow (its bundled Aileron font through
``ImageFont.load_default(size=...)``, so no font file is needed offline): white letters with a
dark outline, legible on bright and dark footage, then alpha-blended into each frame with
numpy at ``visible_opacity``.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kinora.settings import ProvenanceSettings

logger = logging.getLogger(__name__)

MARK = "Kinora"
MIN_TEXT_PX = 10  # below this the handle is not legible
MAX_HANDLE_CHARS = 64
CORNERS = ("top-left", "top-right", "bottom-right", "bottom-left")  # visited in this order


@dataclass(frozen=True)
class MarkLayout:
    """Where the visible mark goes: its text, its box size and its top-left corner per frame."""

    text: str
    font_px: int
    stroke_px: int  # dark outline around the letters
    width: int  # of the mark box, pixels
    height: int
    positions: tuple[tuple[int, int], ...]  # (x, y) of the box's top-left, one per frame
    corners: tuple[str, ...]  # CORNERS name per frame, matching positions

    def box(self, frame_index: int) -> tuple[int, int, int, int]:
        """Return (x0, y0, x1, y1) of the mark on frame ``frame_index``."""
        x, y = self.positions[frame_index]
        return x, y, x + self.width, y + self.height


def _clean_handle(handle: str) -> str:
    handle = handle.strip().removeprefix("@")
    if not handle:
        raise ValueError("handle must not be empty: the visible mark names the creator")
    if len(handle) > MAX_HANDLE_CHARS:
        raise ValueError(f"handle is {len(handle)} characters; at most {MAX_HANDLE_CHARS} fit in a mark")
    if any(unicodedata.category(c).startswith("C") or c.isspace() for c in handle):
        raise ValueError(f"handle {handle!r} holds whitespace or control characters")
    return handle


def _text_size(text: str, font: ImageFont.FreeTypeFont, stroke: int) -> tuple[int, int, int, int]:
    return font.getbbox(text, stroke_width=stroke)  # (x0, y0, x1, y1) relative to the draw origin


def _text_width(text: str, font: ImageFont.FreeTypeFont, stroke: int) -> int:
    x0, _, x1, _ = _text_size(text, font, stroke)
    return x1 - x0


def _fit_text(handle: str, *, frame_w: int, frame_h: int, settings: ProvenanceSettings, margin: int):
    """Pick the text and font size: ``visible_scale`` of the frame height, shrunk to fit the width."""
    target = max(MIN_TEXT_PX, round(settings.visible_scale * frame_h))
    room = frame_w - 2 * margin
    text = f"{MARK} · @{handle}"
    size = target
    while True:
        font = ImageFont.load_default(size=size)
        stroke = max(1, round(size / 12))
        width = _text_width(text, font, stroke)
        if width <= room or size <= MIN_TEXT_PX:
            break
        size = max(MIN_TEXT_PX, math.floor(size * room / width))  # strictly smaller: the loop ends
    if size < target:
        logger.warning("visible mark %r shrunk from %d px to %d px to fit a %d px wide frame", text, target, size, frame_w)
    shown = handle
    while _text_width(text, font, stroke) > room and len(shown) > 1:
        shown = shown[:-1]
        text = f"{MARK} · @{shown}..."
    if shown != handle:
        logger.warning("visible mark shortened to %r to fit a %d px wide frame", text, frame_w)
    return text, font, stroke


def _render(text: str, font: ImageFont.FreeTypeFont, stroke: int, opacity: float) -> np.ndarray:
    """Draw the mark; return float32 RGBA [h, w, 4] in [0, 1], alpha already scaled by ``opacity``."""
    x0, y0, x1, y1 = _text_size(text, font, stroke)
    pad = 1
    image = Image.new("RGBA", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (pad - x0, pad - y0), text, font=font, fill=(255, 255, 255, 255),
        stroke_width=stroke, stroke_fill=(16, 16, 16, 255),
    )
    rgba = np.asarray(image, dtype=np.float32) / 255.0  # [h, w, 4]
    rgba[..., 3] *= opacity
    return rgba


def plan_visible_watermark(
    num_frames: int, height: int, width: int, *, handle: str, fps: int, settings: ProvenanceSettings
) -> MarkLayout:
    """Return the mark's text, size and per-frame position for a clip of this shape."""
    if num_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"clip shape must be positive, got frames={num_frames} height={height} width={width}")
    if fps < 1:
        raise ValueError(f"fps must be positive, got {fps}")
    margin = max(2, round(0.03 * min(height, width)))
    text, font, stroke = _fit_text(_clean_handle(handle), frame_w=width, frame_h=height, settings=settings, margin=margin)
    mark_h, mark_w = _render(text, font, stroke, 1.0).shape[:2]
    mark_w, mark_h = min(mark_w, width), min(mark_h, height)  # a frame too small for the mark shows part of it
    right, bottom = max(0, width - margin - mark_w), max(0, height - margin - mark_h)
    left, top = min(margin, right), min(margin, bottom)
    anchor = {"top-left": (left, top), "top-right": (right, top), "bottom-right": (right, bottom), "bottom-left": (left, bottom)}
    frames_per_move = fps * settings.visible_moves_every_s
    corners = tuple(CORNERS[math.floor(i / frames_per_move + 1e-9) % len(CORNERS)] for i in range(num_frames))
    return MarkLayout(
        text=text, font_px=font.size, stroke_px=stroke, width=mark_w, height=mark_h,
        positions=tuple(anchor[c] for c in corners), corners=corners,
    )


def apply_visible_watermark(frames: np.ndarray, *, handle: str, fps: int, settings: ProvenanceSettings) -> np.ndarray:
    """Return a copy of ``frames`` (uint8 [F, H, W, 3]) with the moving "Kinora · @handle" mark."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 [F, H, W, 3], got {getattr(frames, 'dtype', None)} {getattr(frames, 'shape', None)}"
        )
    num_frames, height, width, _ = frames.shape
    layout = plan_visible_watermark(num_frames, height, width, handle=handle, fps=fps, settings=settings)
    font = ImageFont.load_default(size=layout.font_px)
    rgba = _render(layout.text, font, layout.stroke_px, settings.visible_opacity)
    rgba = rgba[: layout.height, : layout.width]
    color, alpha = rgba[..., :3], rgba[..., 3:]  # [h, w, 3], [h, w, 1]

    out = frames.copy()
    start = 0
    while start < num_frames:  # blend each run of frames that share a position in one step
        end = start
        while end < num_frames and layout.positions[end] == layout.positions[start]:
            end += 1
        x0, y0, x1, y1 = layout.box(start)
        region = out[start:end, y0:y1, x0:x1].astype(np.float32) / 255.0  # [n, h, w, 3]
        blended = region * (1.0 - alpha) + color * alpha
        out[start:end, y0:y1, x0:x1] = np.clip(blended * 255.0 + 0.5, 0, 255).astype(np.uint8)
        start = end
    return out
