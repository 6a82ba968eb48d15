"""Mux generated frames and audio into MP4 (H.264 + AAC), probe MP4s, write thumbnails.

Encoding goes through PyAV (FFmpeg's libx264 and native AAC encoder). Two habits keep the
durations honest:

* Audio frames carry explicit pts starting at 0. The AAC encoder's priming samples are then
  accounted for by the muxer's edit list, so the audio *stream* duration equals the samples
  we fed it. Durations are judged from stream durations, never from the first packet's pts.
* Audio is padded or trimmed to exactly ``frames / fps`` seconds (after resampling to
  :attr:`MediaSettings.audio_sample_rate`), so container, video and audio durations agree
  within one video frame.

Every file is written to a temporary name in the destination folder and renamed into place,
so a reader never sees half an MP4 and a crash leaves no file under the final name.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from kinora.errors import KinoraError
from kinora.settings import MediaSettings

logger = logging.getLogger(__name__)

AUDIO_CHANNELS = 2  # AAC stereo always: mono input is duplicated to both channels
_AAC_FRAME = 1024  # samples per AAC frame (the encoder's frame_size)
_MP4_FORMAT_NAMES = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}  # FFmpeg's one demuxer for ISO BMFF


class MediaError(KinoraError, ValueError):
    """A file is not a readable MP4, or media input has the wrong shape."""


@dataclass(frozen=True)
class MediaProbe:
    """What an MP4 holds; audio fields are None when it has no audio stream (video likewise)."""

    video_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    video_frames: int | None
    video_duration_s: float | None
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None
    audio_duration_s: float | None
    container_duration_s: float | None


@contextmanager
def _atomic_path(out_path: Path, suffix: str) -> Iterator[Path]:
    """Yield a temporary path next to ``out_path``; rename it into place only on success."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_media_inputs(frames: np.ndarray, audio: np.ndarray | None, *, fps: int, sample_rate: int) -> None:
    """Raise :class:`MediaError` naming the bad value if the inputs cannot be encoded."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise MediaError(f"frames must be a uint8 array [F, H, W, 3], got shape {getattr(frames, 'shape', None)}")
    if frames.dtype != np.uint8:
        raise MediaError(f"frames must be uint8, got {frames.dtype}")
    num_frames, height, width, _ = frames.shape
    if num_frames < 1:
        raise MediaError("frames is empty (0 frames)")
    if height % 2 or width % 2:
        # yuv420p halves the chroma planes; odd sizes would be cropped or padded by libx264.
        raise MediaError(f"frame size must be even for yuv420p, got {width}x{height}")
    if not isinstance(fps, (int, np.integer)) or fps < 1:
        raise MediaError(f"fps must be a positive integer, got {fps!r}")
    if audio is None:
        return
    if not isinstance(audio, np.ndarray) or audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise MediaError(f"audio must be a float array [C, S] with C in (1, 2), got shape {getattr(audio, 'shape', None)}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise MediaError(f"audio must be floating point in [-1, 1], got {audio.dtype}")
    if sample_rate < 1:
        raise MediaError(f"sample_rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(audio)):
        raise MediaError("audio holds NaN or infinite samples")


def _prepare_audio(audio: np.ndarray, *, sample_rate: int, target_rate: int, num_samples: int) -> np.ndarray:
    """Return float32 [2, num_samples] at ``target_rate``: resampled, stereo, exact length."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)  # [C, S]
    if sample_rate != target_rate:
        import torch
        import torchaudio.functional as AF

        audio = AF.resample(torch.from_numpy(audio.copy()), orig_freq=sample_rate, new_freq=target_rate).numpy()
    if audio.shape[0] == 1:
        audio = np.repeat(audio, AUDIO_CHANNELS, axis=0)  # mono -> [2, S]
    have = audio.shape[1]
    if abs(have - num_samples) > target_rate // 100:  # more than 10 ms off: say so, then fit
        logger.warning(
            "audio lasts %.3f s but the video %.3f s; %s to match",
            have / target_rate, num_samples / target_rate, "padding with silence" if have < num_samples else "trimming",
        )
    if have < num_samples:
        audio = np.pad(audio, ((0, 0), (0, num_samples - have)))
    audio = audio[:, :num_samples]
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 1.0:
        logger.warning("audio peaks at %.3f, above full scale; clipping to [-1, 1]", peak)
        audio = np.clip(audio, -1.0, 1.0)
    return np.ascontiguousarray(audio, dtype=np.float32)


def encode_mp4(
    frames: np.ndarray,  # uint8 [F, H, W, 3], RGB
    audio: np.ndarray | None,  # float [C, S] in [-1, 1], C in (1, 2); None: video only
    *,
    fps: int,
    sample_rate: int,
    out_path: Path,
    settings: MediaSettings,
) -> None:
    """Encode ``frames`` as H.264 and ``audio`` as AAC stereo into one MP4 at ``out_path``.

    The clip lasts exactly ``F / fps`` seconds: audio is resampled to
    ``settings.audio_sample_rate`` and padded or trimmed (with a warning beyond 10 ms) to match.
    """
    # 1. Check inputs.
    check_media_inputs(frames, audio, fps=fps, sample_rate=sample_rate)
    num_frames = frames.shape[0]
    target_rate = settings.audio_sample_rate

    # 2. Prepare audio: resample, stereo, exact duration.
    pcm = None
    if audio is not None:
        num_samples = round(num_frames * target_rate / fps)
        pcm = _prepare_audio(audio, sample_rate=sample_rate, target_rate=target_rate, num_samples=num_samples)

    # 3. Encode and mux into a temporary file, then rename it into place.
    try:
        with _atomic_path(Path(out_path), suffix=".mp4.part") as tmp:
            _mux(tmp, frames, pcm, fps=fps, sample_rate=target_rate, settings=settings)
    except av.FFmpegError as exc:
        raise MediaError(f"{out_path}: encoding failed ({exc})") from exc


def _mux(tmp: Path, frames: np.ndarray, pcm: np.ndarray | None, *, fps: int, sample_rate: int, settings: MediaSettings) -> None:
    """Write H.264 video and, when ``pcm`` (float32 [2, S]) is given, AAC audio into the MP4 at ``tmp``."""
    num_frames, height, width, _ = frames.shape
    # faststart puts the index before the media so players can start streaming at once.
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.codec_context.time_base = Fraction(1, fps)
        vstream.options = {"crf": str(settings.crf), "preset": settings.preset}
        astream = None
        if pcm is not None:
            astream = container.add_stream("aac", rate=sample_rate, layout="stereo")
            astream.bit_rate = settings.audio_bitrate
            astream.codec_context.time_base = Fraction(1, sample_rate)

        for i in range(num_frames):
            vframe = av.VideoFrame.from_ndarray(frames[i], format="rgb24")  # converted to yuv420p by the encoder
            vframe.pts = i
            container.mux(vstream.encode(vframe))
        container.mux(vstream.encode(None))  # flush delayed frames

        if astream is not None:
            for start in range(0, pcm.shape[1], _AAC_FRAME):
                chunk = np.ascontiguousarray(pcm[:, start : start + _AAC_FRAME])  # [2, <=1024], planar
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                aframe.sample_rate = sample_rate
                aframe.pts = start  # first frame at 0: the muxer's edit list hides AAC priming
                aframe.time_base = Fraction(1, sample_rate)
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _check_box_structure(path: Path) -> None:
    """Walk the top-level ISO BMFF boxes; raise if one runs past the end of the file (truncation).

    FFmpeg reads a truncated MP4 whose index comes first (faststart) without complaint, so the
    header alone cannot tell a whole file from a cut one.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                raise MediaError(f"{path}: not a readable MP4 ({size - offset} stray bytes at offset {offset})")
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:  # 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # box extends to the end of the file
                box_size = size - offset
            if box_size < 8 or not box_type.isascii():
                raise MediaError(f"{path}: not a readable MP4 (bad box header at offset {offset})")
            if offset + box_size > size:
                name = box_type.decode("ascii", "replace")
                raise MediaError(
                    f"{path}: not a readable MP4 (truncated: box {name!r} needs {offset + box_size} bytes, file has {size})"
                )
            offset += box_size


def probe_mp4(path: Path) -> MediaProbe:
    """Describe the first video and audio stream of the MP4 at ``path``.

    Raises:
        MediaError: the file is missing, unreadable, or not an MP4.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    try:
        with av.open(str(path), mode="r") as container:
            _check_box_structure(path)
            if not _MP4_FORMAT_NAMES & set(container.format.name.split(",")):
                raise MediaError(f"{path}: not an MP4 (container format {container.format.name!r})")
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            if video is None and audio is None:
                raise MediaError(f"{path}: MP4 holds neither video nor audio")
            rate = (video.average_rate or video.guessed_rate) if video is not None else None
            return MediaProbe(
                video_codec=video.codec_context.name if video is not None else None,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                fps=float(rate) if rate else None,
                video_frames=(video.frames or None) if video is not None else None,
                video_duration_s=_seconds(video.duration, video.time_base) if video is not None else None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_channels=audio.codec_context.channels if audio is not None else None,
                audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                audio_duration_s=_seconds(audio.duration, audio.time_base) if audio is not None else None,
                container_duration_s=(container.duration / av.time_base) if container.duration is not None else None,
            )
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable MP4 ({exc.strerror or exc})") from exc


def read_frames(path: Path) -> np.ndarray:
    """Decode every video frame of ``path`` to uint8 RGB [F, H, W, 3] (for tests and checks)."""
    path = Path(path)
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({exc.strerror or exc})") from exc
    if not frames:
        raise MediaError(f"{path}: video stream holds no frames")
    return np.stack(frames)


def write_thumbnail(frame: np.ndarray, out_path: Path, quality: int = 85) -> None:
    """Write one uint8 RGB frame [H, W, 3] as a JPEG at ``out_path`` (atomically)."""
    from PIL import Image

    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        got = f"{getattr(frame, 'dtype', None)} {getattr(frame, 'shape', None)}"
        raise MediaError(f"thumbnail frame must be uint8 [H, W, 3], got {got}")
    if not 1 <= quality <= 95:
        raise MediaError(f"JPEG quality must be in 1..95, got {quality}")
    with _atomic_path(Path(out_path), suffix=".jpg.part") as tmp:
        Image.fromarray(frame).save(tmp, format="JPEG", quality=quality, optimize=True)
