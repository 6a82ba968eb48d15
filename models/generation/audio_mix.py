"""Fit a generated waveform to a clip: sample rate, stereo, exact length and loudness.

Backends whose audio comes from a separate text-to-audio model (the ``wan`` family) hand its
waveform to :func:`fit_audio`, which returns exactly what :class:`~models.generation.types.Clip`
promises: float32 stereo of exactly the clip's sample count, in [-1, 1].

Loudness is integrated loudness as defined by ITU-R BS.1770-4 (K-weighting, 400 ms blocks with
75% overlap, absolute gate at -70 LKFS, relative gate at -10 LU), measured with
``torchaudio.functional.loudness``. EBU R128 / ITU-R BS.1770 name the unit LUFS (== LKFS).

References: ITU-R BS.1770-4 (https://www.itu.int/rec/R-REC-BS.1770-4-201510-I/en);
EBU R128 (https://tech.ebu.ch/publications/r128).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torchaudio.functional as AF

logger = logging.getLogger(__name__)

SILENCE_LUFS = -70.0  # BS.1770's absolute gate: blocks quieter than this count as silence
PEAK_LIMIT = 0.99  # largest absolute sample value after gain (headroom below digital full scale)
_BLOCK_S = 0.4  # BS.1770 gating block; shorter audio is tiled to one block to be measured


def fit_audio(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    target_rate: int,
    num_samples: int,
    loudness_lufs: float | None,
) -> np.ndarray:
    """Resample ``waveform`` [C, S] to stereo float32 [2, num_samples] at ``target_rate``, at ``loudness_lufs``.

    Steps, in order: resample (``torchaudio.functional.resample``, windowed sinc); mono becomes
    stereo by duplication; trim, or pad the end with silence, to exactly ``num_samples``; apply one
    gain so the integrated loudness of the result is ``loudness_lufs``; scale down (never up) so no
    sample exceeds :data:`PEAK_LIMIT` in magnitude.

    Audio quieter than :data:`SILENCE_LUFS` (or all zeros) is left at its level, since there is no
    programme to normalise and the gain would only amplify the noise floor; a debug log says so.
    When the peak limit has to scale a normalised signal down, its loudness ends below the target;
    a debug log gives the loudness reached. ``loudness_lufs=None`` skips normalisation (the peak
    limit still applies).

    Args:
        waveform: float samples [C, S] with C 1 (mono) or 2 (stereo), nominally in [-1, 1].
        sample_rate: rate of ``waveform`` in Hz.
        target_rate: rate of the result in Hz.
        num_samples: samples per channel of the result.
        loudness_lufs: integrated loudness of the result in LUFS, or None to keep the level.

    Raises:
        ValueError: if the waveform is not [C, S] with 1 or 2 channels, holds NaN or infinity, or a
            rate or ``num_samples`` is not positive.
    """
    samples = np.asarray(waveform)
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise ValueError(f"waveform must be [channels, samples] with 1 or 2 channels, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("waveform holds NaN or infinite samples")
    if sample_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample_rate {sample_rate} and target_rate {target_rate} must be positive")
    if num_samples <= 0:
        raise ValueError(f"num_samples {num_samples} must be positive")

    # [C, S] float32 at sample_rate -> [C, S'] at target_rate
    audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if sample_rate != target_rate and audio.shape[1] > 0:
        audio = AF.resample(audio, orig_freq=sample_rate, new_freq=target_rate)

    # [1 or 2, S'] -> [2, S']
    if audio.shape[0] == 1:
        audio = audio.expand(2, -1)

    # [2, S'] -> [2, num_samples]: the clip's length, not the model's
    if audio.shape[1] >= num_samples:
        audio = audio[:, :num_samples]
    else:
        logger.debug("padding audio from %d to %d samples with silence", audio.shape[1], num_samples)
        audio = torch.nn.functional.pad(audio, (0, num_samples - audio.shape[1]))
    audio = audio.contiguous()

    if loudness_lufs is not None:
        measured = integrated_loudness(audio, target_rate)
        if not math.isfinite(measured) or measured < SILENCE_LUFS:
            logger.debug(
                "audio is near-silent (%s LUFS, below %s): left unchanged, not normalised to %s LUFS",
                f"{measured:.1f}",
                SILENCE_LUFS,
                loudness_lufs,
            )
        else:
            audio = audio * 10.0 ** ((loudness_lufs - measured) / 20.0)

    peak = float(audio.abs().max()) if audio.numel() else 0.0
    if peak > PEAK_LIMIT:
        audio = audio * (PEAK_LIMIT / peak)
        if loudness_lufs is not None:
            logger.debug(
                "peak-limited audio by %.1f dB to %.2f: loudness now %.1f LUFS (target %s)",
                20 * math.log10(peak / PEAK_LIMIT),
                PEAK_LIMIT,
                integrated_loudness(audio, target_rate),
                loudness_lufs,
            )
    return np.ascontiguousarray(audio.numpy(), dtype=np.float32)


def integrated_loudness(audio: torch.Tensor, sample_rate: int) -> float:
    """Measure the BS.1770 integrated loudness of ``audio`` [C, S] in LUFS (NaN or -inf for silence).

    Audio shorter than one 400 ms gating block is tiled up to one block, which measures a short
    sound as if it repeated; ``torchaudio`` cannot measure fewer samples than a block.
    """
    block = int(round(_BLOCK_S * sample_rate))
    if audio.shape[-1] == 0:
        return float("nan")
    if audio.shape[-1] < block:
        audio = audio.repeat(1, math.ceil(block / audio.shape[-1]))[:, :block]
    # float64: the K-weighting filters and the block energies of quiet audio stay accurate
    return float(AF.loudness(audio.to(torch.float64), sample_rate))
