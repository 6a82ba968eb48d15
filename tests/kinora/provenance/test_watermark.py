"""The invisible watermark: payload coding, embedding quality, and every attack of the provenance
issue on a small clip (384x384, 2 s: the smallest size at which a half-size downscale keeps it)."""

from __future__ import annotations

import numpy as np
import pytest

from kinora.provenance import attacks
from kinora.provenance import watermark as wm
from models.synthetic import panning_clip

CONTENT_ID = 0x5EED_CAFE_F00D


@pytest.fixture(scope="module")
def published():
    """A marked clip as stamping publishes it (H.264 CRF 23), and the unmarked original."""
    raw = panning_clip(384, 384, 48, seed=3)
    marked = wm.embed(raw, CONTENT_ID)
    return raw, marked, attacks.reencode(marked, 23)


def test_payload_round_trip_corrects_byte_errors():
    soft = wm.encode_payload(CONTENT_ID)
    assert soft.shape == (wm.CODED_BITS,) and wm.decode_payload(soft) == CONTENT_ID
    damaged = soft.copy()
    damaged[[0, 9, 18, 27]] *= -1  # four bytes each with a wrong bit: RS(16, 8) corrects them
    assert wm.decode_payload(damaged) == CONTENT_ID
    weak = soft.copy()
    for byte in range(6):  # six wrong bytes, but the detector knows they are the least reliable
        weak[byte * 8] *= -0.01
    assert wm.decode_payload(weak) == CONTENT_ID  # 2 errors + 4 erasures
    with pytest.raises(ValueError, match="48 bits"):
        wm.encode_payload(1 << 48)


def test_random_bits_decode_to_nothing():
    rng = np.random.default_rng(0)
    hits = sum(wm.decode_payload(rng.normal(size=wm.CODED_BITS)) is not None for _ in range(3000))
    assert hits == 0  # the bound is 1.6e-8 per try; 3,000 tries would show a gross error
    assert wm.FALSE_POSITIVE_BOUND < 1e-6


def test_embedding_keeps_psnr_above_38_db(published):
    raw, marked, _ = published
    assert 38.0 <= wm.psnr(raw, marked) < 40.0
    assert wm.detect(raw).content_id is None  # the original carries nothing


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
def test_the_content_id_survives(published, name):
    attacked = attacks.ATTACKS[name](published[2])
    found = wm.detect(attacked)
    assert found.content_id == CONTENT_ID, (name, found)
    assert wm.bit_accuracy(attacked, CONTENT_ID) >= 0.95
    if name == "crop_10pct_edges":
        assert found.scale == pytest.approx(0.9, abs=0.02)  # it found the grid again at the crop's scale


def test_unmarked_published_clips_read_as_nothing():
    for seed in range(5):
        assert wm.detect(attacks.reencode(panning_clip(256, 256, 8, seed=900 + seed), 23)).content_id is None


def test_reading_a_file_matches_reading_its_frames(published, tmp_path):
    from kinora.settings import MediaSettings
    from models.media import encode_mp4

    path = tmp_path / "m.mp4"
    encode_mp4(published[1], None, fps=24, sample_rate=48_000, out_path=path, settings=MediaSettings())
    assert wm.detect_file(path).content_id == CONTENT_ID
