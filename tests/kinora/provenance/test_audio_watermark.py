"""The audio watermark: the content id in the soundtrack, through AAC at 96 kbit/s."""

from __future__ import annotations

import numpy as np
import pytest

from kinora.provenance import audio_watermark as aw
from kinora.settings import MediaSettings
from models.media import encode_mp4

CONTENT_ID = 0x0BAD_5EED_1234


def _music(seconds: float, seed: int = 0, rate: int = 48_000) -> np.ndarray:
    """Held tones with a slow tremolo plus a little noise: steady sound, the hard case for a static mark."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
            for f in rng.uniform(100, 3000, 8))
    x = x + 0.02 * rng.normal(size=t.size)
    return (0.5 * np.stack([x, x])).astype(np.float32)


def _aac(audio: np.ndarray, tmp_path, bitrate: int = 96_000) -> tuple[np.ndarray, int]:
    path = tmp_path / "a.mp4"
    frames = np.zeros((round(audio.shape[1] / 48_000 * 24), 64, 64, 3), np.uint8)
    encode_mp4(frames, audio, fps=24, sample_rate=48_000, out_path=path, settings=MediaSettings(audio_bitrate=bitrate))
    return aw.read_audio(path)


def test_marked_sound_reads_back_and_unmarked_reads_nothing():
    plain = _music(2.0)
    marked = aw.embed_audio(plain, 48_000, CONTENT_ID)
    assert marked.shape == plain.shape and marked.dtype == np.float32
    assert aw.detect_audio(marked, 48_000).content_id == CONTENT_ID
    assert aw.detect_audio(plain, 48_000).content_id is None
    assert 14 < aw.snr_db(plain, marked) < 22  # the cost: about 17 dB signal-to-watermark


@pytest.mark.parametrize("seconds", [10.0])  # shorter soundtracks read less reliably (see the benchmark)
def test_the_content_id_survives_aac_at_96_kbits(tmp_path, seconds):
    pcm, rate = _aac(aw.embed_audio(_music(seconds, seed=int(seconds)), 48_000, CONTENT_ID), tmp_path)
    assert rate == 48_000
    assert aw.detect_audio(pcm, rate).content_id == CONTENT_ID
    assert aw.audio_bit_accuracy(pcm, rate, CONTENT_ID) >= 0.95


def test_other_rates_are_marked_at_48_khz():
    plain = _music(2.0, rate=44_100)
    marked = aw.embed_audio(plain, 44_100, CONTENT_ID)
    assert marked.shape[1] == 96_000  # resampled to the rate Kinora encodes
    assert aw.detect_audio(marked, 48_000).content_id == CONTENT_ID


def test_silence_and_short_sound_carry_nothing():
    assert aw.detect_audio(np.zeros((2, 48_000), np.float32), 48_000).content_id is None
    short = aw.embed_audio(_music(0.01), 48_000, CONTENT_ID)  # under one analysis window: left as it is
    assert aw.detect_audio(short, 48_000).content_id is None
