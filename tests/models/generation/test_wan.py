"""Tests for the Wan + AudioLDM2 generator on the tiny random-weight preset (real diffusers classes, CPU)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import WanPipeline

from kinora.settings import GenerationSettings
from models.generation import load_generator
from models.generation.audio_mix import PEAK_LIMIT, integrated_loudness
from models.generation.types import Clip, ClipRequest, VideoGenerator
from models.generation.wan import SAMPLE_RATE, WanGenerator, save_tiny_checkpoint


@pytest.fixture(scope="module")
def wan_settings() -> GenerationSettings:
    return GenerationSettings(
        family="wan", preset="tiny", device="cpu", dtype="float32", num_inference_steps=3, torch_threads=1
    )


@pytest.fixture(scope="module")
def generator(wan_settings: GenerationSettings) -> WanGenerator:
    """One tiny generator for the module: building it is cheap, importing diffusers is not."""
    return WanGenerator.from_settings(wan_settings)


def request(**overrides) -> ClipRequest:
    fields = dict(prompt="a red fox runs through fresh snow", width=256, height=256, duration_s=1.0, fps=24, seed=7)
    fields.update(overrides)
    return ClipRequest(**fields)


def one(generator: WanGenerator, req: ClipRequest) -> Clip:
    clips = generator.generate([req])
    assert len(clips) == 1
    return clips[0]


def test_generator_satisfies_protocol(generator: WanGenerator) -> None:
    assert isinstance(generator, VideoGenerator)
    assert generator.family == "wan"
    assert generator.model_version == "wan-tiny-random-s0"
    assert generator.spatial_multiple == 32  # Wan 2.2 TI2V geometry: 16x VAE x 2x2 patches
    assert generator.temporal_multiple == 4


@pytest.mark.parametrize(
    ("duration_s", "num_frames"),
    [(1.0, 24), (2.0, 48), (25 / 24, 25)],  # 25 is already 4k+1: nothing trimmed
)
def test_exact_frames_and_audio_length(generator: WanGenerator, duration_s: float, num_frames: int) -> None:
    clip = one(generator, request(duration_s=duration_s))

    assert clip.frames.shape == (num_frames, 256, 256, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.frames.std() > 0  # noise, but not a constant image
    assert clip.fps == 24
    assert clip.duration_s == pytest.approx(duration_s)

    assert clip.sample_rate == SAMPLE_RATE == 48_000
    assert clip.audio.dtype == np.float32
    assert clip.audio.shape == (2, round(num_frames / 24 * SAMPLE_RATE))
    assert clip.audio.shape[1] / clip.sample_rate == pytest.approx(clip.duration_s)
    assert np.isfinite(clip.audio).all()
    assert np.abs(clip.audio).max() <= PEAK_LIMIT
    assert np.array_equal(clip.audio[0], clip.audio[1])  # AudioLDM2 is mono, duplicated to stereo

    assert clip.seed == 7
    assert clip.model_family == "wan"
    assert set(clip.timings) == {"video", "audio", "mix", "pipeline", "generate_call"}
    assert all(v > 0 for v in clip.timings.values())
    parts = clip.timings["video"] + clip.timings["audio"] + clip.timings["mix"]
    assert clip.timings["pipeline"] == pytest.approx(parts)
    assert clip.timings["generate_call"] >= clip.timings["pipeline"]  # the whole call, around its parts


def test_audio_is_normalised_to_the_configured_loudness(generator: WanGenerator) -> None:
    """The tiny vocoder makes hiss around -30 dBFS; the mix brings it to settings.audio_loudness_lufs."""
    clip = one(generator, request())
    measured = integrated_loudness(torch.from_numpy(clip.audio), clip.sample_rate)
    assert measured == pytest.approx(generator.settings.audio_loudness_lufs, abs=0.5)


def test_frame_adjustment_is_logged(generator: WanGenerator, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="models.generation.wan"):
        one(generator, request(duration_s=1.0))
    assert any("generating 25 frames" in r.getMessage() and "24" in r.getMessage() for r in caplog.records)


def test_same_seed_is_bit_identical_and_seeds_differ(generator: WanGenerator) -> None:
    a = one(generator, request(seed=11))
    b = one(generator, request(seed=11))
    c = one(generator, request(seed=12))

    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)
    assert not np.array_equal(a.audio, c.audio)


def test_explicit_generators_are_used(generator: WanGenerator) -> None:
    seeded = one(generator, request(seed=11))
    explicit = generator.generate([request(seed=99)], generator=[torch.Generator().manual_seed(11)])[0]
    assert np.array_equal(seeded.frames, explicit.frames)
    assert np.array_equal(seeded.audio, explicit.audio)  # audio is seeded from the generator's seed


def test_tiny_seed_changes_the_weights(generator: WanGenerator, wan_settings: GenerationSettings) -> None:
    other = WanGenerator.from_settings(wan_settings, tiny_seed=1)
    assert other.model_version == "wan-tiny-random-s1"
    mine, theirs = one(generator, request()), one(other, request())
    assert not np.array_equal(mine.frames, theirs.frames)
    assert not np.array_equal(mine.audio, theirs.audio)


def test_local_checkpoint_reproduces_tiny_bit_for_bit(
    generator: WanGenerator, wan_settings: GenerationSettings, tmp_path: Path
) -> None:
    video_dir, audio_dir = save_tiny_checkpoint(tmp_path / "wan-tiny", tmp_path / "audioldm2-tiny", seed=0)
    local = WanGenerator.from_settings(
        wan_settings.model_copy(
            update={"preset": "local", "checkpoint_dir": video_dir, "audio_checkpoint_dir": audio_dir}
        )
    )

    assert local.model_version.startswith("wan-tiny-")
    assert "+audioldm2-tiny-" in local.model_version
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
        ({"negative_prompt": "x" * 2001}, "negative_prompt"),
        ({"fps": 30}, "fps"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"seed": -1}, "seed"),
        ({"reference_image": np.zeros((64, 64), dtype=np.uint8)}, "reference_image"),
        ({"reference_image": np.zeros((64, 64, 3), dtype=np.float32)}, "reference_image"),
    ],
)
def test_check_inputs_names_the_bad_field(generator: WanGenerator, overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        generator.check_inputs(request(**overrides))
    with pytest.raises(ValueError, match=field):
        generator.generate([request(**overrides)])


def test_check_inputs_requires_multiples_of_32(wan_settings: GenerationSettings, generator: WanGenerator) -> None:
    odd_settings = wan_settings.model_copy(update={"resolutions": ["256x256", "240x240"]})
    odd = WanGenerator(generator.pipe, generator.audio_pipe, odd_settings, "x")
    odd.check_inputs(request())  # allowed and a multiple of 32
    with pytest.raises(ValueError, match="multiples of 32"):
        odd.check_inputs(request(width=240, height=240))  # a multiple of 16 only: Wan 2.1 would take it


def test_text_to_video_only_checkpoint_rejects_cameos(
    wan_settings: GenerationSettings, generator: WanGenerator
) -> None:
    """Without per-token timesteps (Wan 2.1, Wan 2.2 A14B) image-to-video needs other weights: refuse."""
    t2v_only = WanPipeline(**generator.pipe.components, expand_timesteps=False)
    plain = WanGenerator(t2v_only, generator.audio_pipe, wan_settings, "wan-t2v-only")

    assert plain.i2v_pipe is None
    plain.check_inputs(request())
    face = np.zeros((64, 64, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="reference_image: the 'wan' family in this build does not take cameo"):
        plain.check_inputs(request(reference_image=face))


def test_batch_of_two(generator: WanGenerator) -> None:
    first, second = request(seed=1, prompt="a red fox"), request(seed=2, prompt="a blue whale")
    batch = generator.generate([first, second])

    assert len(batch) == 2
    assert [c.seed for c in batch] == [1, 2]
    for clip in batch:
        assert clip.frames.shape == (24, 256, 256, 3)
        assert clip.frames.dtype == np.uint8
        assert clip.audio.shape == (2, SAMPLE_RATE)
    assert not np.array_equal(batch[0].frames, batch[1].frames)
    assert not np.array_equal(batch[0].audio, batch[1].audio)

    # Each clip follows its own request's seed. Batched matmuls and padded prompts may round
    # differently from a single call on CPU, so compare closely, not exactly.
    alone = one(generator, first)
    assert np.abs(alone.frames.astype(np.int16) - batch[0].frames).mean() < 0.1
    np.testing.assert_allclose(alone.audio, batch[0].audio, atol=1e-4)  # measured: 4e-6


def test_batch_rejects_mixed_shapes(generator: WanGenerator) -> None:
    with pytest.raises(ValueError, match="shape_key"):
        generator.generate([request(), request(duration_s=2.0)])
    with pytest.raises(ValueError, match="generator"):
        generator.generate([request(), request()], generator=[torch.Generator()])


def test_reference_image_conditions_the_clip(generator: WanGenerator) -> None:
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
    assert np.array_equal(with_face.audio, text_only.audio)  # the sound model never sees the image


def test_mixed_batch_keeps_request_order(generator: WanGenerator) -> None:
    face = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    plain, cameo = request(seed=3), request(seed=4, reference_image=face)
    clips = generator.generate([cameo, plain])

    assert [c.seed for c in clips] == [4, 3]
    assert np.array_equal(clips[0].frames, one(generator, cameo).frames)


def test_load_generator_builds_wan_from_default_settings() -> None:
    loaded = load_generator(GenerationSettings(family="wan"))

    assert isinstance(loaded, WanGenerator)
    clip = loaded.generate([request(seed=3)])[0]
    assert clip.frames.shape == (24, 256, 256, 3)
    assert clip.audio.shape == (2, SAMPLE_RATE)
    assert clip.model_family == "wan"
