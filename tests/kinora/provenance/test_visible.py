"""Tests for the moving visible watermark."""

from __future__ import annotations

import numpy as np
import pytest

from kinora.provenance.visible import CORNERS, MIN_TEXT_PX, apply_visible_watermark, plan_visible_watermark
from kinora.settings import ProvenanceSettings

FPS = 24


def textured(num_frames: int = 48, height: int = 256, width: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(40, 200, size=(num_frames, height, width, 3), dtype=np.uint8)  # [F, H, W, 3]


@pytest.fixture
def settings() -> ProvenanceSettings:
    return ProvenanceSettings()  # opacity 0.55, 6% of the height, moves every second


def test_mark_changes_pixels_only_inside_its_box(settings):
    frames = textured()
    marked = apply_visible_watermark(frames, handle="@alice", fps=FPS, settings=settings)
    layout = plan_visible_watermark(*frames.shape[:3], handle="alice", fps=FPS, settings=settings)
    assert layout.text == "Kinora · @alice"
    for i in (0, 30):
        x0, y0, x1, y1 = layout.box(i)
        inside = np.abs(marked[i, y0:y1, x0:x1].astype(np.int16) - frames[i, y0:y1, x0:x1])
        assert (inside.max(axis=-1) > 20).mean() > 0.15  # letters and outline cover a good part of the box
        outside = marked[i].copy()
        outside[y0:y1, x0:x1] = frames[i, y0:y1, x0:x1]
        assert np.array_equal(outside, frames[i])


def test_mark_moves_between_early_and_late_frames(settings):
    frames = textured()
    marked = apply_visible_watermark(frames, handle="alice", fps=FPS, settings=settings)
    layout = plan_visible_watermark(*frames.shape[:3], handle="alice", fps=FPS, settings=settings)
    assert layout.corners[0] == CORNERS[0] and layout.corners[FPS] == CORNERS[1]
    assert layout.positions[0] != layout.positions[-1]
    assert len(set(layout.positions[:FPS])) == 1  # holds still within one second
    x0, y0, x1, y1 = layout.box(0)  # where the mark was at the start, the late frame is untouched
    assert np.array_equal(marked[-1, y0:y1, x0:x1], frames[-1, y0:y1, x0:x1])
    assert not np.array_equal(marked[0, y0:y1, x0:x1], frames[0, y0:y1, x0:x1])


def test_mark_visits_every_corner_at_the_configured_pace():
    settings = ProvenanceSettings(visible_moves_every_s=0.5)
    layout = plan_visible_watermark(48, 256, 256, handle="bob", fps=FPS, settings=settings)
    assert layout.corners[11] == CORNERS[0] and layout.corners[12] == CORNERS[1]
    assert set(layout.corners) == set(CORNERS) and len(set(layout.positions)) == 4
    for x, y in layout.positions:  # always fully inside the frame
        assert 0 <= x and x + layout.width <= 256 and 0 <= y and y + layout.height <= 256


def test_input_is_untouched_and_output_is_deterministic(settings):
    frames = textured(12, 128, 128)
    before = frames.copy()
    first = apply_visible_watermark(frames, handle="alice", fps=FPS, settings=settings)
    second = apply_visible_watermark(frames, handle="alice", fps=FPS, settings=settings)
    assert np.array_equal(frames, before)
    assert first is not frames and np.array_equal(first, second)
    assert first.dtype == np.uint8 and first.shape == frames.shape


def test_text_height_follows_scale_with_a_legible_minimum(settings):
    assert plan_visible_watermark(1, 512, 512, handle="a", fps=FPS, settings=settings).font_px == round(0.06 * 512)
    assert plan_visible_watermark(1, 96, 128, handle="a", fps=FPS, settings=settings).font_px == MIN_TEXT_PX


def test_opacity_controls_the_strength(settings):
    frames = np.full((1, 512, 512, 3), 60, np.uint8)  # 31 px letters: solid white cores
    faint = apply_visible_watermark(frames, handle="a", fps=FPS, settings=ProvenanceSettings(visible_opacity=0.2))
    strong = apply_visible_watermark(frames, handle="a", fps=FPS, settings=ProvenanceSettings(visible_opacity=1.0))
    assert faint.max() < strong.max() and strong.max() == 255  # white letters at full opacity


def test_long_handle_is_shortened_to_fit_a_small_frame(caplog, settings):
    layout = plan_visible_watermark(1, 64, 64, handle="a_rather_long_handle", fps=FPS, settings=settings)
    assert layout.text.startswith("Kinora · @a") and layout.text.endswith("...")
    assert layout.width <= 64
    assert "shortened" in caplog.text


@pytest.mark.parametrize("handle", ["", "@", "two words", "tab\there", "x" * 65])
def test_bad_handles_are_refused(handle, settings):
    with pytest.raises(ValueError, match="handle"):
        apply_visible_watermark(textured(1, 64, 64), handle=handle, fps=FPS, settings=settings)


def test_bad_frames_are_refused(settings):
    with pytest.raises(ValueError, match="uint8"):
        apply_visible_watermark(np.zeros((2, 64, 64, 3), np.float32), handle="a", fps=FPS, settings=settings)
