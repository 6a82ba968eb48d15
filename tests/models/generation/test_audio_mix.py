"""Tests for fitting generated audio to a clip: rate, stereo, exact length, BS.1770 loudness, peak limit."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from models.generation.audio_mix import PEAK_LIMIT, fit_audio, integrated_loudness

RATE = 48_000


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t))[None, :].astype(np.float32)  # mono [1, S]


def noise(seconds: float, rate: int, channels: int = 2, scale: float = 0.05, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, size=(channels, round(seconds * rate))).astype(np.float32)


def lufs(audio: np.ndarray, rate: int = RATE) -> float:
    return integrated_loudness(torch.from_numpy(audio), rate)


@pytest.mark.parametrize("target", [-23.0, -16.0, -10.0])
@pytest.mark.parametrize("kind", ["sine", "noise"])
def test_loudness_reaches_target(kind: str, target: float) -> None:
    source = sine(440, 1.0, 16_000, amplitude=0.05) if kind == "sine" else noise(1.0, 44_100)
    rate = 16_000 if kind == "sine" else 44_100

    out = fit_audio(source, sample_rate=rate, target_rate=RATE, num_samples=RATE, loudness_lufs=target)

    assert out.shape == (2, RATE)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= PEAK_LIMIT
    assert lufs(out) == pytest.approx(target, abs=0.5)
    assert abs(lufs(source, rate) - target) > 3  # the gain really did something


def test_mono_becomes_identical_stereo() -> None:
    out = fit_audio(sine(440, 1.0, 16_000), sample_rate=16_000, target_rate=RATE, num_samples=RATE, loudness_lufs=-16)
    assert out.shape == (2, RATE)
    assert np.array_equal(out[0], out[1])
    assert out[0].std() > 0


def test_resampling_keeps_pitch_and_rate() -> None:
    """A 1 kHz tone at 16 kHz is still 1 kHz at 48 kHz, and one second is 48000 samples."""
    out = fit_audio(sine(1000, 1.0, 16_000), sample_rate=16_000, target_rate=RATE, num_samples=RATE, loudness_lufs=None)

    spectrum = np.abs(np.fft.rfft(out[0]))
    freqs = np.fft.rfftfreq(out.shape[1], d=1 / RATE)
    assert freqs[spectrum.argmax()] == pytest.approx(1000, abs=1)
    # Without normalisation the level is kept: windowed-sinc resampling preserves a tone's amplitude.
    assert np.abs(out[:, 1000:-1000]).max() == pytest.approx(0.3, abs=0.01)


def test_same_rate_without_loudness_is_a_copy() -> None:
    source = noise(0.5, RATE)
    out = fit_audio(source, sample_rate=RATE, target_rate=RATE, num_samples=source.shape[1], loudness_lufs=None)
    assert np.array_equal(out, source)


@pytest.mark.parametrize("num_samples", [RATE // 2, RATE, 2 * RATE, 12_345])
def test_exact_length_by_trim_or_silent_pad(num_samples: int) -> None:
    source = noise(1.0, RATE)  # 48000 samples
    out = fit_audio(source, sample_rate=RATE, target_rate=RATE, num_samples=num_samples, loudness_lufs=None)

    assert out.shape == (2, num_samples)
    kept = min(num_samples, source.shape[1])
    assert np.array_equal(out[:, :kept], source[:, :kept])  # trimming keeps the start
    assert not out[:, kept:].any()  # padding is silence


def test_silence_stays_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="models.generation.audio_mix"):
        out = fit_audio(
            np.zeros((1, 16_000), np.float32), sample_rate=16_000, target_rate=RATE, num_samples=RATE, loudness_lufs=-16
        )
    assert out.shape == (2, RATE)
    assert np.isfinite(out).all()
    assert not out.any()
    assert any("near-silent" in r.getMessage() for r in caplog.records)


def test_near_silence_is_left_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    whisper = noise(1.0, RATE, scale=1e-5)  # about -90 LUFS: below BS.1770's -70 LUFS absolute gate
    assert lufs(whisper) < -70 or not np.isfinite(lufs(whisper))

    with caplog.at_level(logging.DEBUG, logger="models.generation.audio_mix"):
        out = fit_audio(whisper, sample_rate=RATE, target_rate=RATE, num_samples=RATE, loudness_lufs=-16)
    assert np.array_equal(out, whisper)  # no 70 dB of gain on a noise floor
    assert any("near-silent" in r.getMessage() for r in caplog.records)


def test_peaks_are_limited_after_gain(caplog: pytest.LogCaptureFixture) -> None:
    clicks = np.zeros((1, RATE), np.float32)
    clicks[0, ::4800] = 0.5  # ten clicks: a huge crest factor, so -5 LUFS would need peaks far above 1

    with caplog.at_level(logging.DEBUG, logger="models.generation.audio_mix"):
        out = fit_audio(clicks, sample_rate=RATE, target_rate=RATE, num_samples=RATE, loudness_lufs=-5)
    assert np.abs(out).max() == pytest.approx(PEAK_LIMIT, abs=1e-6)
    assert lufs(out) < -5  # limiting cost loudness, and says so
    assert any("peak-limited" in r.getMessage() for r in caplog.records)


def test_audio_shorter_than_a_gating_block_is_normalised() -> None:
    out = fit_audio(sine(440, 0.1, 16_000), sample_rate=16_000, target_rate=RATE, num_samples=4800, loudness_lufs=-16)
    assert out.shape == (2, 4800)
    assert lufs(out) == pytest.approx(-16, abs=0.5)


@pytest.mark.parametrize(
    ("waveform", "kwargs", "match"),
    [
        (np.zeros(100, np.float32), {}, "waveform"),
        (np.zeros((3, 100), np.float32), {}, "waveform"),
        (np.full((1, 100), np.nan, np.float32), {}, "waveform"),
        (np.zeros((1, 100), np.float32), {"num_samples": 0}, "num_samples"),
        (np.zeros((1, 100), np.float32), {"sample_rate": 0}, "sample_rate"),
    ],
)
def test_bad_input_raises(waveform: np.ndarray, kwargs: dict, match: str) -> None:
    args = dict(sample_rate=16_000, target_rate=RATE, num_samples=RATE, loudness_lufs=-16.0) | kwargs
    with pytest.raises(ValueError, match=match):
        fit_audio(waveform, **args)
