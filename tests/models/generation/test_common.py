"""Helpers every generation backend shares."""

from __future__ import annotations

import numpy as np

from models.generation.common import to_uint8


def test_to_uint8_gives_the_bytes_of_the_plain_formula_and_leaves_its_input_alone() -> None:
    rng = np.random.default_rng(3)
    frames = rng.uniform(-0.2, 1.2, size=(5, 16, 16, 3)).astype(np.float32)
    # the edges: out of range, exactly 0 and 1, and values whose x255 lies near a half
    frames[0, 0, :6, 0] = [-1.0, 0.0, 1.0, 2.0, 0.5 / 255, 1.5 / 255]
    before = frames.copy()

    got = to_uint8(frames[:, :, ::2])  # a strided view, as a slice of the pipeline's output can be

    want = (np.clip(frames[:, :, ::2], 0.0, 1.0) * 255).round().astype(np.uint8)
    assert got.dtype == np.uint8 and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, want)
    assert list(to_uint8(frames)[0, 0, :4, 0]) == [0, 0, 255, 255]  # -1, 0, 1, 2
    assert np.array_equal(frames, before)
