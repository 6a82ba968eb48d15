"""Audio watermark: the video's 48-bit content id in the soundtrack, surviving AAC re-encoding.

A spectral pattern that flips sign in time, read from the sound alone:

- each of the 128 coded bits of :func:`kinora.provenance.watermark.encode_payload` owns
  :data:`BINS_PER_BIT` STFT bins (two runs of two adjacent bins at keyed places between about
  940 Hz and 12.9 kHz, 23.4 Hz each; keyed signs), and the STFT frames of each block of :data:`BLOCK_FRAMES` frames scale those bins'
  magnitudes by ``1 + depth * sign * bit * chip``, where ``chip`` (+-1) follows a balanced keyed
  sequence of :data:`PERIOD_BLOCKS` blocks that repeats;
- the detector takes each frame's log spectrum minus its envelope, despreads per bit, and
  correlates over time with the chip sequence at every lag, keeping the lag with the most energy.
  Steady sound (a held tone, hum) is the same in every block, so the balanced sequence cancels it;
  a static pattern would be indistinguishable from it.

The same Reed-Solomon + CRC decoding, and so the same false-detection bound, as the video mark.
Best effort, measured by ``benchmarks/provenance.py``: through AAC at 96 kbit/s it reads 10-second
soundtracks reliably, 5-second ones about two times in three and 2-second ones rarely, at about
17 dB signal-to-watermark; the video mark is the one to rely on.
Work happens at 48 kHz (the rate Kinora's AAC encoder writes); other rates are resampled first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional as AF

from kinora.provenance.watermark import CODED_BITS, decode_payload, encode_payload

RATE = 48_000
N_FFT = 2048  # 23.4 Hz bins (4096 and 8192 were tried: fewer frames to average, worse after AAC)
HOP = N_FFT // 4
FIRST_BIN = 940 * N_FFT // 48_000  # ~940 Hz: below, music and voice carry most of their energy
BINS_PER_BIT = 4  # adjacent bins, one sign: the analysis window smears single bins into their neighbours
DEPTH = 0.2  # +-1.7 dB on the marked bins: about 17 dB signal-to-watermark (0.12 lost too many bits to AAC)
ENVELOPE_BINS = 31  # moving average across frequency that the detector removes
BLOCK_FRAMES = 8  # frames (hops) per chip: 8 x 512 samples = 85 ms
PERIOD_BLOCKS = 8  # chips per period (4 x +1, 4 x -1): 0.68 s


@dataclass(frozen=True)
class AudioDetection:
    content_id: int | None
    bit_agreement: float  # coded bits agreeing with the decoded payload (0 when none)
    seconds_read: float


RUN = 2  # adjacent bins per run; a bit owns BINS_PER_BIT // RUN runs spread over the band (1 and 4 did worse)


def _layout(key: bytes = b"kinora-audio-watermark-v1") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bins, bit index per bin, sign per bin): each bit owns BINS_PER_BIT // RUN runs of RUN
    adjacent bins, at keyed places across the band (so no bit lives only where AAC is coarsest)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    runs = CODED_BITS * BINS_PER_BIT // RUN
    bins = FIRST_BIN + np.arange(runs * RUN)
    bit_of_run = rng.permutation(np.repeat(np.arange(CODED_BITS), BINS_PER_BIT // RUN))
    sign_of_run = rng.choice([-1.0, 1.0], runs)
    return bins, np.repeat(bit_of_run, RUN), np.repeat(sign_of_run, RUN)


_BINS, _BIT_OF_BIN, _SIGN = _layout()
_WINDOW = torch.hann_window(N_FFT)
_CHIPS = np.random.default_rng(7).permutation(np.repeat([1.0, -1.0], PERIOD_BLOCKS // 2))


def _chip_of_frames(n_frames: int, lag: int = 0) -> np.ndarray:
    """The chip (+-1) each STFT frame carries, for frames counted from ``lag`` frames into the sequence."""
    block = (np.arange(n_frames) + lag) // BLOCK_FRAMES
    return _CHIPS[block % PERIOD_BLOCKS]


def to_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 [C, S] at 48 kHz."""
    wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if sample_rate != RATE:
        wave = AF.resample(wave, sample_rate, RATE)
    return wave.numpy()


def embed_audio(audio: np.ndarray, sample_rate: int, content_id: int, depth: float = DEPTH) -> np.ndarray:
    """Mark float [C, S] audio; returns float32 [C, S'] at 48 kHz (S' = S resampled)."""
    wave = torch.from_numpy(to_rate(audio, sample_rate))
    length = wave.shape[-1]
    if length < N_FFT:
        return wave.numpy()  # too short to carry the mark; the video mark still does
    bits = encode_payload(content_id)
    pattern = torch.zeros(N_FFT // 2 + 1)
    pattern[_BINS] = torch.from_numpy(depth * _SIGN * bits[_BIT_OF_BIN]).float()
    spec = torch.stft(wave, N_FFT, HOP, window=_WINDOW, return_complex=True)  # [C, bins, frames]
    chips = torch.from_numpy(_chip_of_frames(spec.shape[-1])).float()
    gain = 1.0 + pattern[:, None] * chips[None, :]
    marked = torch.istft(spec * gain[None], N_FFT, HOP, window=_WINDOW, length=length)
    return marked.clamp(-1.0, 1.0).numpy().astype(np.float32)


def _per_frame_bits(audio48: np.ndarray) -> np.ndarray | None:
    """[frames, 128]: each frame's log spectrum minus its envelope, despread per bit (None: silence)."""
    wave = torch.from_numpy(np.ascontiguousarray(audio48, dtype=np.float32)).mean(dim=0)  # mono
    spec = torch.stft(wave, N_FFT, HOP, window=_WINDOW, return_complex=True).abs()  # [bins, frames]
    if float(spec.mean()) < 1e-7:
        return None
    logmag = torch.log(spec + 1e-7).T  # [frames, bins]
    pad = ENVELOPE_BINS // 2
    envelope = torch.nn.functional.avg_pool1d(torch.nn.functional.pad(logmag[:, None], (pad, pad), mode="replicate"),
                                              ENVELOPE_BINS, stride=1)[:, 0]
    residual = (logmag - envelope).numpy()[:, _BINS] * _SIGN
    spread = np.median(np.abs(residual)) * 1.4826 + 1e-9  # robust: a transient is not the mark
    residual = np.clip(residual, -3 * spread, 3 * spread)
    out = np.zeros((residual.shape[0], CODED_BITS))
    np.add.at(out.T, _BIT_OF_BIN, residual.T)
    return out


def _soft_bits(audio48: np.ndarray) -> np.ndarray:
    """128 soft bits at the chip lag where they carry the most energy."""
    frames = _per_frame_bits(audio48)
    if frames is None:
        return np.zeros(CODED_BITS)
    best, best_energy = np.zeros(CODED_BITS), -1.0
    for lag in range(BLOCK_FRAMES * PERIOD_BLOCKS):
        chips = _chip_of_frames(len(frames), lag)
        soft = chips @ frames
        energy = float(np.sum(np.abs(soft)))
        if energy > best_energy:
            best, best_energy = soft, energy
    return best


def detect_audio(audio: np.ndarray, sample_rate: int) -> AudioDetection:
    """Read the content id from float [C, S] audio at any rate (any excerpt of at least ~0.1 s)."""
    audio48 = to_rate(audio, sample_rate)
    if audio48.shape[-1] < N_FFT:
        return AudioDetection(None, 0.0, audio48.shape[-1] / RATE)
    soft = _soft_bits(audio48)
    content_id = decode_payload(soft)
    agreement = float(np.mean(np.sign(soft) == encode_payload(content_id))) if content_id is not None else 0.0
    return AudioDetection(content_id, round(agreement, 4), round(audio48.shape[-1] / RATE, 3))


def audio_bit_accuracy(audio: np.ndarray, sample_rate: int, content_id: int) -> float:
    return float(np.mean(np.sign(_soft_bits(to_rate(audio, sample_rate))) == encode_payload(content_id)))


def read_audio(path) -> tuple[np.ndarray, int] | None:
    """A file's soundtrack as float32 [C, S] and its rate, or None without one."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray() for f in container.decode(stream)]
        rate = stream.rate
    if not chunks:
        return None
    pcm = np.concatenate([c if c.ndim == 2 else c[None, :] for c in chunks], axis=1).astype(np.float32)
    return pcm, rate


def snr_db(original: np.ndarray, marked: np.ndarray) -> float:
    """Signal-to-watermark ratio of the change, in dB (both float [C, S] at the same rate)."""
    n = min(original.shape[-1], marked.shape[-1])
    noise = float(np.mean((marked[..., :n] - original[..., :n]) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.mean(original[..., :n] ** 2)) / noise)
