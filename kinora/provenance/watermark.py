"""Invisible video watermark: a 48-bit content id that survives re-encoding, scaling, cropping,
brightness changes and trimming, read from the pixels alone.

Why not ``invisible-watermark`` alone: its DWT-DCT-SVD marks each frame's colour channel at pixel
scale, which 4:2:0 H.264 halves and CRF 28 or a half-size downscale wipes out, and it has no way to
find its grid again after a crop (``../shared/notes/media-provenance-facts.md``: 0.64-0.69 bit
accuracy at CRF 30 or 0.5x + CRF 23). What this module does instead, a classic tiled
spread-spectrum design:

- **Where**: luma (the same change on R, G and B), in *chips*: square blocks of ``height / 64``
  pixels, large enough to survive CRF 28 and a half-size downscale. 32 x 32 chips make a *tile*
  (half the frame height); tiles repeat over the whole frame and over every frame, so any 2-second
  window, any crop and any frame carries whole copies.
- **What**: half of each tile's 1,024 chips carry a fixed pseudo-random *pilot*; the other half
  spread 128 coded bits (4 chips each per tile, positions and signs from a keyed permutation). The
  coded bits are Reed-Solomon (``reedsolo``): 6 bytes of content id + 2 bytes CRC-16 + 8 parity
  bytes, which corrects any 4 wrong bytes.
- **Reading**: average the luma of the frames (the static mark adds up, moving content blurs),
  resize to height 256, keep the high frequencies, and for each crop scale (0.76-1.04) fold the
  residual into one tile; the pilot's circular cross-correlation (FFT) finds the tile's offset, and
  the best peak wins. Chips at that alignment give 128 soft bits; RS decodes; the CRC confirms.
- **False detections**: a file without the mark decodes only if one of five RS tries (plain, then
  1-4 least reliable bytes erased) lands on a codeword *and* the CRC of its id matches: 1.6e-8
  per file (:data:`FALSE_POSITIVE_BOUND`, derived where it is defined); the pilot's z-score is
  reported as the confidence.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from reedsolo import ReedSolomonError, RSCodec

CHIPS_PER_HEIGHT = 64  # chip size = frame height / 64 (40 and 48 were tried: worse after a downscale)
TILE = 32  # chips per tile side
CANON_H = 4 * CHIPS_PER_HEIGHT  # the detector's working height, 256: chip = 4 px, tile = 128 px
CANON_CHIP = CANON_H // CHIPS_PER_HEIGHT
CANON_TILE = TILE * CANON_CHIP
ID_BYTES, CRC_BYTES, PARITY_BYTES = 6, 2, 8
CODED_BITS = 8 * (ID_BYTES + CRC_BYTES + PARITY_BYTES)  # 128
PILOT_CHIPS = TILE * TILE // 2
CHIPS_PER_BIT = (TILE * TILE - PILOT_CHIPS) // CODED_BITS  # 4
SCALES = tuple(round(s, 3) for s in np.arange(0.76, 1.045, 0.01))  # visible fraction after a crop
MAX_ERASURES = 4  # least reliable bytes tried as erasures when plain decoding fails


def _false_positive_bound() -> float:
    """Chance that a file without the mark reads as some content id, per file.

    It must pass one of the decoding tries and the CRC-16. With e bytes erased, RS(16, 8) corrects
    t = (8 - e) // 2 errors, and a random word lies within t errors of some codeword with
    probability sum_k C(16 - e, k) 255^k / 256^(8 - e). Over e = 0..4 that is 1.03e-3 (the try
    with 4 erasures dominates), times 2^-16 for the CRC: 1.6e-8.
    """
    from math import comb

    n, k = ID_BYTES + CRC_BYTES + PARITY_BYTES, ID_BYTES + CRC_BYTES
    tries = sum(sum(comb(n - e, j) * 255**j for j in range((n - k - e) // 2 + 1)) / 256 ** (n - k - e)
                for e in range(MAX_ERASURES + 1))
    return tries * 2.0 ** (-8 * CRC_BYTES)


FALSE_POSITIVE_BOUND = _false_positive_bound()
_RS = RSCodec(PARITY_BYTES)


@dataclass(frozen=True)
class Layout:
    """Which chips of a tile carry the pilot and which carry each coded bit, with their signs."""

    pilot: np.ndarray  # [TILE, TILE] float: +-1 on pilot chips, 0 elsewhere
    bit_of_chip: np.ndarray  # [TILE, TILE] int: coded bit index on data chips, -1 on pilot chips
    sign: np.ndarray  # [TILE, TILE] float: spreading sign on data chips


def layout(key: bytes = b"kinora-watermark-v1") -> Layout:
    """The keyed chip layout (the same for every video: the payload differs, the geometry does not)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    order = rng.permutation(TILE * TILE)
    pilot = np.zeros(TILE * TILE)
    pilot[order[:PILOT_CHIPS]] = rng.choice([-1.0, 1.0], PILOT_CHIPS)
    bit_of_chip = np.full(TILE * TILE, -1)
    bit_of_chip[order[PILOT_CHIPS:]] = np.repeat(np.arange(CODED_BITS), CHIPS_PER_BIT)
    sign = np.zeros(TILE * TILE)
    sign[order[PILOT_CHIPS:]] = rng.choice([-1.0, 1.0], TILE * TILE - PILOT_CHIPS)
    return Layout(pilot.reshape(TILE, TILE), bit_of_chip.reshape(TILE, TILE), sign.reshape(TILE, TILE))


_LAYOUT = layout()


def content_id_for(video_id: str) -> int:
    """The 48-bit content id a video carries (derived from its id; the catalog stores it)."""
    return int.from_bytes(hashlib.sha256(video_id.encode()).digest()[:ID_BYTES], "big")


def encode_payload(content_id: int) -> np.ndarray:
    """128 coded bits (+-1) for a 48-bit content id."""
    if not 0 <= content_id < 1 << (8 * ID_BYTES):
        raise ValueError(f"content id must fit in {8 * ID_BYTES} bits")
    data = content_id.to_bytes(ID_BYTES, "big")
    data += binascii.crc_hqx(data, 0xFFFF).to_bytes(CRC_BYTES, "big")
    coded = bytes(_RS.encode(data))
    bits = np.unpackbits(np.frombuffer(coded, dtype=np.uint8)).astype(np.float64)
    return bits * 2 - 1


def decode_payload(soft: np.ndarray) -> int | None:
    """The content id from 128 soft bits, or None when RS cannot correct them or the CRC disagrees.

    Plain decoding corrects 4 wrong bytes. When it fails, the 1..4 least reliable bytes (smallest
    soft magnitude) are tried as erasures, which RS corrects at half the cost of an error: up to 4
    erasures plus 2 errors. Each try is counted in :data:`FALSE_POSITIVE_BOUND`.
    """
    soft = np.asarray(soft, dtype=np.float64)
    word = bytearray(np.packbits((soft > 0).astype(np.uint8)).tobytes())
    order = np.argsort(np.abs(soft).reshape(-1, 8).min(axis=1)).tolist()  # least reliable byte first
    for erasures in range(MAX_ERASURES + 1):
        try:
            data = bytes(_RS.decode(bytearray(word), erase_pos=order[:erasures] or None)[0])
        except ReedSolomonError:
            continue
        body, crc = data[:ID_BYTES], data[ID_BYTES:]
        if binascii.crc_hqx(body, 0xFFFF).to_bytes(CRC_BYTES, "big") == crc:
            return int.from_bytes(body, "big")
    return None


def _tile_pattern(content_id: int) -> np.ndarray:
    """[TILE, TILE] chip values (+-1): the pilot and the spread payload."""
    bits = encode_payload(content_id)
    data = np.where(_LAYOUT.bit_of_chip >= 0, bits[np.clip(_LAYOUT.bit_of_chip, 0, None)] * _LAYOUT.sign, 0.0)
    return _LAYOUT.pilot + data


def pattern_for(height: int, width: int, content_id: int) -> np.ndarray:
    """The mark at a frame size: [H, W] of +-1, chips of ``height / 64`` px tiled from the top-left corner.

    (Smooth raised-sine chips were tried: same PSNR, no gain after a downscale; flat chips stay.)
    """
    tile = _tile_pattern(content_id)
    ys = (np.arange(height) * CHIPS_PER_HEIGHT // height) % TILE
    xs = (np.arange(width) * CHIPS_PER_HEIGHT // height) % TILE
    return tile[ys[:, None], xs[None, :]]


def embed(frames: np.ndarray, content_id: int, strength: float = 3.0) -> np.ndarray:
    """Add the mark to uint8 RGB frames [F, H, W, 3]; ``strength`` is the luma step in levels
    (3.0 keeps PSNR near 38.6 dB before clipping). Works frame by frame in int16 (saturating)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    delta = np.rint(strength * pattern_for(frames.shape[1], frames.shape[2], content_id)).astype(np.int16)
    delta = np.repeat(delta[:, :, None], 3, axis=2)
    out = np.empty_like(frames)
    buf = np.empty(frames.shape[1:], dtype=np.int16)
    for i, frame in enumerate(frames):
        np.add(frame, delta, out=buf, dtype=np.int16)
        np.clip(buf, 0, 255, out=buf)
        out[i] = buf
    return out


@dataclass(frozen=True)
class Detection:
    content_id: int | None  # None: no readable mark
    confidence: float  # the pilot's peak z-score at the chosen alignment
    scale: float  # visible fraction of the original the file shows (1.0 uncropped)
    offset: tuple[int, int]  # tile offset found, canonical pixels
    bit_agreement: float  # soft bits agreeing with the decoded payload's re-encoding (0 when none)
    frames_read: int


def _canonical_luma(frame: np.ndarray) -> torch.Tensor:
    """One RGB frame's luma resized to height 256 (area when shrinking), as [1, 1, H, W] float."""
    f = torch.from_numpy(np.ascontiguousarray(frame)).float()
    y = (0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2])[None, None]
    h, w = frame.shape[:2]
    size = (CANON_H, max(8, round(w * CANON_H / h)))
    if h >= CANON_H:
        return F.interpolate(y, size=size, mode="area")
    return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def _mean_luma(frames: Iterable[np.ndarray]) -> tuple[torch.Tensor | None, int]:
    """Mean canonical luma over ``frames`` (streamed: memory stays one frame), and how many."""
    total, n = None, 0
    for frame in frames:
        y = _canonical_luma(frame)
        total = y if total is None else total + y
        n += 1
    return (None if total is None else total / n), n


def _highpass(y: torch.Tensor) -> torch.Tensor:
    """Remove the picture's low frequencies (a 9 x 9 box mean), whiten, and clip outliers (edges)."""
    r = y - F.avg_pool2d(F.pad(y, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    # Whiten: divide by the local residual level, so busy texture (where the picture, not the mark,
    # dominates the residual) counts less than calm areas. Halves the bit errors after a downscale.
    local = F.avg_pool2d(F.pad(r * r, (7, 7, 7, 7), mode="replicate"), 15, stride=1).sqrt()
    r = r / (local + 1.0)
    s = r.std().clamp_min(1e-6)
    return r.clamp(-3 * s, 3 * s)


def _fold(r: torch.Tensor) -> torch.Tensor:
    """Average the residual into one canonical tile [CANON_TILE, CANON_TILE] by position mod the tile."""
    _, _, h, w = r.shape
    ph, pw = -h % CANON_TILE, -w % CANON_TILE
    padded = F.pad(r, (0, pw, 0, ph))
    ones = F.pad(torch.ones_like(r), (0, pw, 0, ph))
    th, tw = padded.shape[2] // CANON_TILE, padded.shape[3] // CANON_TILE
    acc = padded.reshape(th, CANON_TILE, tw, CANON_TILE).sum(dim=(0, 2))
    n = ones.reshape(th, CANON_TILE, tw, CANON_TILE).sum(dim=(0, 2)).clamp_min(1)
    return acc / n


# How much each pixel row/column of a chip counts when reading it: the centre more than the edges,
# which blur into the neighbours after scaling and compression.
_CHIP_WEIGHTS = torch.tensor([0.5, 1.0, 1.0, 0.5])
_PILOT_PX = torch.from_numpy(np.kron(_LAYOUT.pilot, np.ones((CANON_CHIP, CANON_CHIP)))).float()
_PILOT_FFT = torch.fft.rfft2(_PILOT_PX)


def detect(frames: np.ndarray, max_frames: int = 96) -> Detection:
    """Read the mark from uint8 RGB frames [F, H, W, 3] (any size, any window of the clip)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [F, H, W, 3], got {frames.shape}")
    step = max(1, -(-len(frames) // max_frames))
    return _analyse(*_mean_luma(frames[::step]))[0]


def detect_file(path, max_frames: int = 96) -> Detection:
    """Read the mark from a video file, decoding every frame but keeping at most ``max_frames``
    evenly spaced ones (memory stays one frame)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = max(1, -(-(stream.frames or 0) // max_frames))
        frames = (f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(stream)) if i % step == 0)
        return _analyse(*_mean_luma(frames))[0]


def _analyse(luma: torch.Tensor | None, used: int) -> tuple[Detection, np.ndarray]:
    """The detection and the 128 soft bits at the alignment it chose."""
    if luma is None:
        return Detection(None, 0.0, 1.0, (0, 0), 0.0, 0), np.zeros(CODED_BITS)
    r = _highpass(luma)
    best = (-np.inf, 1.0, (0, 0), None)
    for scale in SCALES:
        rs = r if scale == 1.0 else F.interpolate(r, scale_factor=scale, mode="bilinear", align_corners=False)
        if min(rs.shape[2:]) < CANON_TILE // 2:
            continue
        tile = _fold(rs)
        corr = torch.fft.irfft2(torch.fft.rfft2(tile) * _PILOT_FFT.conj(), s=tile.shape)  # corr[d] = sum tile[x+d] p[x]
        z = (corr - corr.mean()) / corr.std().clamp_min(1e-9)
        peak = int(torch.argmax(z))
        zmax = float(z.flatten()[peak])
        if zmax > best[0]:
            best = (zmax, scale, divmod(peak, CANON_TILE), tile)
    zmax, scale, (dy, dx), tile = best
    if tile is None:
        return Detection(None, 0.0, 1.0, (0, 0), 0.0, used), np.zeros(CODED_BITS)
    soft = _soft_bits(torch.roll(tile, shifts=(-dy, -dx), dims=(0, 1)))
    content_id = decode_payload(soft)
    agreement = float(np.mean(np.sign(soft) == encode_payload(content_id))) if content_id is not None else 0.0
    found = Detection(content_id, round(zmax, 2), float(scale), (int(dy), int(dx)), round(agreement, 4), used)
    return found, soft


def _soft_bits(aligned: torch.Tensor) -> np.ndarray:
    """128 soft bits from an aligned canonical tile: each chip's weighted mean, despread, summed per bit."""
    w = _CHIP_WEIGHTS
    chips = torch.einsum("aibj,i,j->ab", aligned.reshape(TILE, CANON_CHIP, TILE, CANON_CHIP), w, w).numpy()
    data = _LAYOUT.bit_of_chip >= 0
    soft = np.zeros(CODED_BITS)
    np.add.at(soft, _LAYOUT.bit_of_chip[data], (chips * _LAYOUT.sign)[data])
    return soft


def bit_accuracy(frames: np.ndarray, content_id: int, max_frames: int = 96) -> float:
    """Share of the 128 coded bits read right at the detector's alignment (the benchmark's figure;
    it does not need the decode to succeed)."""
    step = max(1, -(-len(frames) // max_frames))
    soft = _analyse(*_mean_luma(frames[::step]))[1]
    return float(np.mean(np.sign(soft) == encode_payload(content_id)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
