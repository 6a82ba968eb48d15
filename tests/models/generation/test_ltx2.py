"""Tests for the LTX-2 generator on the tiny random-weight preset (real diffusers classes, CPU)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from kinora.settings import GenerationSettings
from models.generation.ltx2 import LTX2Generator, save_tiny_checkpoint
from models.generation.types import Clip, ClipRequest, VideoGenerator

SAMPLE_RATE = 24_000  # the tiny vocoder, like the real one, outputs 24 kHz


@pytest.fixture(scope="session")
def settings() -> GenerationSettings:
    return GenerationSettings(preset="tiny", device="cpu", dtype="float32", num_inference_steps=3, torch_threads=1)


@pytest.fixture(scope="session")
def generator(settings: GenerationSettings) -> LTX2Generator:
    """One tiny generator for the whole session: building it is cheap, importing diffusers is not."""
    return LTX2Generator.from_settings(settings)


def request(**overrides) -> ClipRequest:
    fields = dict(prompt="a red fox runs through fresh snow", width=256, height=256, duration_s=1.0, fps=24, seed=7)
    fields.update(overrides)
    return ClipRequest(**fields)


def one(generator: LTX2Generator, req: ClipRequest) -> Clip:
    clips = generator.generate([req])
    assert len(clips) == 1
    return clips[0]


def test_generator_satisfies_protocol(generator: LTX2Generator) -> None:
    assert isinstance(generator, VideoGenerator)
    assert generator.family == "ltx2"
    assert generator.model_version == "ltx2-tiny-random-s0"


@pytest.mark.parametrize(
    ("duration_s", "num_frames"),
    [(1.0, 24), (2.0, 48), (25 / 24, 25)],  # 25 is already 8k+1: nothing trimmed, audio padded
)
def test_exact_frames_and_audio_length(generator: LTX2Generator, duration_s: float, num_frames: int) -> None:
    clip = one(generator, request(duration_s=duration_s))

    assert clip.frames.shape == (num_frames, 256, 256, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.frames.std() > 0  # noise, but not a constant image
    assert clip.fps == 24
    assert clip.duration_s == pytest.approx(duration_s)

    assert clip.sample_rate == SAMPLE_RATE
    assert clip.audio.dtype == np.float32
    assert clip.audio.shape == (2, round(num_frames / 24 * SAMPLE_RATE))
    assert np.abs(clip.audio).max() <= 1.0
    assert clip.audio.shape[1] / clip.sample_rate == pytest.approx(clip.duration_s)

    assert clip.seed == 7
    assert clip.model_family == "ltx2"
    assert clip.timings["pipeline"] > 0
    # the whole generate() call, around the pipeline and the conversion to uint8 frames and fitted audio
    assert clip.timings["generate_call"] >= clip.timings["pipeline"] + clip.timings["postprocess"]


def test_frame_adjustment_is_logged(generator: LTX2Generator, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="models.generation.ltx2"):
        one(generator, request(duration_s=1.0))
    assert any("generating 25 frames" in r.getMessage() and "24" in r.getMessage() for r in caplog.records)


def test_same_seed_is_bit_identical_and_seeds_differ(generator: LTX2Generator) -> None:
    a = one(generator, request(seed=11))
    b = one(generator, request(seed=11))
    c = one(generator, request(seed=12))

    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)
    assert not np.array_equal(a.audio, c.audio)


def test_explicit_generators_are_used(generator: LTX2Generator) -> None:
    seeded = one(generator, request(seed=11))
    explicit = generator.generate([request(seed=99)], generator=[torch.Generator().manual_seed(11)])[0]
    assert np.array_equal(seeded.frames, explicit.frames)


def test_tiny_seed_changes_the_weights(generator: LTX2Generator, settings: GenerationSettings) -> None:
    other = LTX2Generator.from_settings(settings, tiny_seed=1)
    assert other.model_version == "ltx2-tiny-random-s1"
    assert not np.array_equal(one(generator, request()).frames, one(other, request()).frames)


def test_local_checkpoint_reproduces_tiny_bit_for_bit(
    generator: LTX2Generator, settings: GenerationSettings, tmp_path: Path
) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path / "ltx2-tiny", seed=0)
    local = LTX2Generator.from_settings(settings.model_copy(update={"preset": "local", "checkpoint_dir": checkpoint}))

    assert local.model_version.startswith("ltx2-tiny-")
    assert local.model_version != generator.model_version
    req = request(seed=5)
    expected, got = one(generator, req), one(local, req)
    assert np.array_equal(expected.frames, got.frames)
    assert np.array_equal(expected.audio, got.audio)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"width": 512, "height": 512}, "resolution"),  # not in settings.resolutions
        ({"duration_s": 60.0}, "duration_s"),
        ({"duration_s": 0.5}, "duration_s"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"fps": 30}, "fps"),
        ({"reference_image": np.zeros((64, 64), dtype=np.uint8)}, "reference_image"),
        ({"reference_image": np.zeros((64, 64, 3), dtype=np.float32)}, "reference_image"),
    ],
)
def test_check_inputs_names_the_bad_field(generator: LTX2Generator, overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        generator.check_inputs(request(**overrides))
    with pytest.raises(ValueError, match=field):
        generator.generate([request(**overrides)])


def test_check_inputs_requires_multiples_of_32(settings: GenerationSettings, generator: LTX2Generator) -> None:
    odd = LTX2Generator(generator.pipe, settings.model_copy(update={"resolutions": ["256x256", "250x250"]}), "x")
    odd.check_inputs(request())  # allowed and a multiple of 32
    with pytest.raises(ValueError, match="multiples of 32"):
        odd.check_inputs(request(width=250, height=250))


def test_batch_of_two(generator: LTX2Generator) -> None:
    first, second = request(seed=1, prompt="a red fox"), request(seed=2, prompt="a blue whale")
    batch = generator.generate([first, second])

    assert len(batch) == 2
    assert [c.seed for c in batch] == [1, 2]
    for clip in batch:
        assert clip.frames.shape == (24, 256, 256, 3)
        assert clip.audio.shape == (2, SAMPLE_RATE)
    assert not np.array_equal(batch[0].frames, batch[1].frames)

    # Each clip follows its own request's seed. Batched matmuls may round differently from
    # single ones on CPU (measured: at most 1 grey level, audio 1.5e-8), so compare closely, not exactly.
    alone = one(generator, first)
    assert np.abs(alone.frames.astype(np.int16) - batch[0].frames).mean() < 0.1
    np.testing.assert_allclose(alone.audio, batch[0].audio, atol=1e-4)


def test_batch_rejects_mixed_shapes(generator: LTX2Generator) -> None:
    with pytest.raises(ValueError, match="shape_key"):
        generator.generate([request(), request(duration_s=2.0)])
    with pytest.raises(ValueError, match="generator"):
        generator.generate([request(), request()], generator=[torch.Generator()])


def test_reference_image_conditions_the_clip(generator: LTX2Generator) -> None:
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, size=(200, 160, 3), dtype=np.uint8)  # any size: the pipeline resizes it
    other = np.full((200, 160, 3), 128, dtype=np.uint8)

    with_face = one(generator, request(reference_image=face))
    with_other = one(generator, request(reference_image=other))
    text_only = one(generator, request())

    assert with_face.frames.shape == (24, 256, 256, 3)
    assert with_face.frames.dtype == np.uint8
    assert with_face.audio.shape == (2, SAMPLE_RATE)
    assert not np.array_equal(with_face.frames, text_only.frames)
    assert not np.array_equal(with_face.frames, with_other.frames)


def test_mixed_batch_keeps_request_order(generator: LTX2Generator) -> None:
    face = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    plain, cameo = request(seed=3), request(seed=4, reference_image=face)
    clips = generator.generate([cameo, plain])

    assert [c.seed for c in clips] == [4, 3]
    assert np.array_equal(clips[0].frames, one(generator, cameo).frames)
