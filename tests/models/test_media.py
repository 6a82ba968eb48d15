"""Tests for MP4 muxing, probing, decoding and thumbnails (real libx264 and AAC through PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kinora.settings import MediaSettings
from models.media import MediaError, check_media_inputs, encode_mp4, probe_mp4, read_frames, write_thumbnail

FPS, FRAMES, SIZE = 24, 48, 256
SOURCE_RATE = 24_000  # the tiny vocoder's rate: the encoder must resample it to 48 kHz


def synthetic_frames(num_frames: int = FRAMES, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """A panning gradient: smooth enough to compress, different on every frame."""
    t = np.arange(num_frames)[:, None, None]
    frames = np.empty((num_frames, height, width, 3), np.uint8)  # [F, H, W, 3]
    frames[..., 0] = (np.arange(width)[None, None, :] + 4 * t) % 256
    frames[..., 1] = np.broadcast_to(np.arange(height)[None, :, None] % 256, (num_frames, height, width))
    frames[..., 2] = 128
    return frames


def sine(seconds: float, rate: int, channels: int = 1, hz: float = 440.0) -> np.ndarray:
    wave = 0.3 * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)
    return np.repeat(wave[None].astype(np.float32), channels, axis=0)  # [C, S]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames = synthetic_frames()
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    encode_mp4(frames, sine(2.0, SOURCE_RATE), fps=FPS, sample_rate=SOURCE_RATE, out_path=path, settings=MediaSettings())
    return path, frames


def test_encoded_clip_is_h264_and_aac_stereo_48k_lasting_two_seconds(clip):
    path, _ = clip
    probe = probe_mp4(path)
    frame = 1 / FPS
    assert (probe.video_codec, probe.width, probe.height) == ("h264", SIZE, SIZE)
    assert probe.fps == pytest.approx(FPS)
    assert probe.video_frames == FRAMES
    assert (probe.audio_codec, probe.audio_channels, probe.audio_sample_rate) == ("aac", 2, 48_000)
    for duration in (probe.video_duration_s, probe.audio_duration_s, probe.container_duration_s):
        assert abs(duration - 2.0) <= frame, probe


def test_decoded_frames_match_the_input(clip):
    path, frames = clip
    decoded = read_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    # CRF 23 on a smooth gradient: a few levels of error, nowhere near a different picture.
    assert np.abs(decoded.astype(np.int16) - frames).mean() < 6.0


def test_audio_carries_the_sine(clip):
    import av

    path, _ = clip
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)  # fltp [2, S]
    assert pcm.shape[0] == 2
    assert np.allclose(pcm[0], pcm[1], atol=1e-3)  # mono duplicated to both channels
    middle = pcm[0, 24_000:72_000]
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(middle.size, 1 / 48_000)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert 0.15 < np.abs(middle).max() < 0.45  # amplitude 0.3 survives resampling and AAC


def test_short_stereo_audio_is_padded_to_the_video(tmp_path, caplog):
    path = tmp_path / "padded.mp4"
    frames = synthetic_frames(24, 64, 96)
    encode_mp4(frames, sine(0.5, 48_000, channels=2), fps=FPS, sample_rate=48_000, out_path=path, settings=MediaSettings())
    probe = probe_mp4(path)
    assert (probe.width, probe.height, probe.video_frames) == (96, 64, 24)
    assert abs(probe.audio_duration_s - 1.0) <= 1 / FPS
    assert "padding with silence" in caplog.text


def test_video_only_clip_has_no_audio_fields(tmp_path):
    path = tmp_path / "silent.mp4"
    encode_mp4(synthetic_frames(12, 64, 64), None, fps=FPS, sample_rate=48_000, out_path=path, settings=MediaSettings())
    probe = probe_mp4(path)
    assert probe.video_codec == "h264" and probe.video_frames == 12
    assert probe.audio_codec is None and probe.audio_duration_s is None and probe.audio_sample_rate is None


def test_encode_replaces_atomically_and_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "out.mp4"
    frames = synthetic_frames(6, 64, 64)
    encode_mp4(frames, None, fps=FPS, sample_rate=48_000, out_path=path, settings=MediaSettings())
    before = path.read_bytes()
    with pytest.raises(MediaError, match="encoding failed"):
        encode_mp4(frames, None, fps=FPS, sample_rate=48_000, out_path=path, settings=MediaSettings(preset="no-such-preset"))
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left behind


@pytest.mark.parametrize(
    ("frames", "audio", "match"),
    [
        (np.zeros((4, 63, 64, 3), np.uint8), None, "even"),
        (np.zeros((4, 64, 64, 3), np.float32), None, "uint8"),
        (np.zeros((64, 64, 3), np.uint8), None, r"\[F, H, W, 3\]"),
        (np.zeros((0, 64, 64, 3), np.uint8), None, "empty"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.zeros((3, 100), np.float32), "C in"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.full((1, 100), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_inputs_are_refused_by_name(frames, audio, match):
    with pytest.raises(MediaError, match=match):
        check_media_inputs(frames, audio, fps=FPS, sample_rate=48_000)


def test_probe_refuses_files_that_are_not_readable_mp4s(tmp_path, clip):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video " * 100)
    whole = clip[0].read_bytes()
    cut_index = tmp_path / "cut_index.mp4"
    cut_index.write_bytes(whole[:1500])
    cut_media = tmp_path / "cut_media.mp4"  # index intact, media data cut: FFmpeg alone accepts it
    cut_media.write_bytes(whole[: len(whole) // 2])
    jpeg = tmp_path / "picture.mp4"
    Image.new("RGB", (32, 32)).save(jpeg, format="JPEG")
    for path in (garbage, cut_index, cut_media, jpeg, tmp_path / "missing.mp4"):
        with pytest.raises(MediaError, match=path.name):
            probe_mp4(path)
    assert issubclass(MediaError, ValueError)


def test_thumbnail_is_a_jpeg_of_the_frame_size(tmp_path):
    frame = synthetic_frames(1, 192, 320)[0]
    path = tmp_path / "thumbs" / "t.jpg"
    write_thumbnail(frame, path)
    assert path.read_bytes()[:2] == b"\xff\xd8"
    with Image.open(path) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (320, 192), "RGB")
        assert np.abs(np.asarray(image, dtype=np.int16) - frame).mean() < 4.0
