"""Tests for C2PA signing and reading of MP4s (the real c2pa SDK, a development CA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from kinora.provenance.attacks import flip_media_byte
from kinora.provenance.c2pa_manifest import (
    TRAINED_ALGORITHMIC_MEDIA,
    KinoraAssertion,
    read_manifest,
    sign_mp4,
)
from kinora.provenance.certs import SignerMaterial, ensure_dev_ca
from kinora.settings import MediaSettings
from models.media import encode_mp4, probe_mp4

FPS = 24
ASSERTION = KinoraAssertion(
    model_family="ltx2", model_version="ltx2-tiny-random", seed=1234, request_id="req_01abc",
    consent_hash="0" * 63 + "1", rights_hash="f" * 64,
)


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> SignerMaterial:
    return ensure_dev_ca(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> Path:
    """A small real MP4: 24 frames of noise at 64x64 plus a second of a tone."""
    frames = np.random.default_rng(0).integers(0, 256, size=(FPS, 64, 64, 3), dtype=np.uint8)
    audio = (0.2 * np.sin(2 * np.pi * 330 * np.arange(48_000) / 48_000)).astype(np.float32)[None]
    path = tmp_path_factory.mktemp("clips") / "unsigned.mp4"
    encode_mp4(frames, audio, fps=FPS, sample_rate=48_000, out_path=path, settings=MediaSettings())
    return path


@pytest.fixture(scope="module")
def signed(unsigned, material, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("signed") / "signed.mp4"
    sign_mp4(unsigned, dst, assertion=ASSERTION, title="A cat surfing", material=material, claim_generator="Kinora")
    return dst


def test_signed_file_is_valid_and_says_who_made_it(signed):
    report = read_manifest(signed)
    assert report.present and report.validation_state == "Valid"  # intact, but the dev root is not trusted here
    assert any(e.startswith("signingCredential.untrusted") for e in report.errors)
    assert report.claim_generator.startswith("Kinora/")
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.digital_source_type.rsplit("/", 1)[-1] == "trainedAlgorithmicMedia"
    assert report.title == "A cat surfing" and report.actions == ["c2pa.created"]
    assert report.kinora == ASSERTION


def test_signed_file_is_trusted_with_the_dev_root_as_anchor(signed, material):
    report = read_manifest(signed, trust_anchors_pem=material.root_pem)
    assert report.validation_state == "Trusted" and report.errors == []
    assert report.signer == "Kinora Development Signer"


def test_another_root_does_not_make_it_trusted(signed, tmp_path):
    stranger = ensure_dev_ca(tmp_path / "other-ca")
    assert read_manifest(signed, trust_anchors_pem=stranger.root_pem).validation_state == "Valid"


def test_signing_keeps_the_media_playable_and_writes_atomically(unsigned, signed, material, tmp_path):
    before = unsigned.read_bytes()
    probe_in, probe_out = probe_mp4(unsigned), probe_mp4(signed)
    assert probe_out == probe_in
    info = sign_mp4(unsigned, tmp_path / "again.mp4", assertion=ASSERTION, title="t", material=material, claim_generator="Kinora")
    assert unsigned.read_bytes() == before
    assert info.size_bytes == (tmp_path / "again.mp4").stat().st_size > len(before)
    assert info.claim_generator.startswith("Kinora/") and info.remix_of is None
    assert [p.name for p in tmp_path.iterdir()] == ["again.mp4"]


def test_unsigned_and_foreign_files_report_absent(unsigned, tmp_path):
    report = read_manifest(unsigned)
    assert (report.present, report.validation_state, report.kinora) == (False, None, None)
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"hello " * 50)
    assert read_manifest(text).present is False
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "missing.mp4")


def test_one_flipped_byte_of_media_breaks_validation(signed, material, tmp_path):
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(signed.read_bytes())
    flip_media_byte(tampered)
    for anchors in (None, material.root_pem):
        report = read_manifest(tampered, trust_anchors_pem=anchors)
        assert report.present and report.validation_state not in {"Valid", "Trusted"}, report
        assert report.validation_state == "Invalid"
        assert any("bmffHash.mismatch" in e for e in report.errors)


def test_remix_names_its_parent_as_an_ingredient(unsigned, signed, material, tmp_path):
    remix = tmp_path / "remix.mp4"
    info = sign_mp4(
        unsigned, remix, assertion=ASSERTION, title="Remix", material=material, claim_generator="Kinora", parent=signed
    )
    report = read_manifest(remix, trust_anchors_pem=material.root_pem)
    assert info.remix_of == "signed.mp4"
    assert report.validation_state == "Trusted"
    assert report.actions == ["c2pa.created", "c2pa.edited"]
    assert report.ingredients == ["inputTo:signed.mp4"]
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA


def test_assertion_holds_hashes_only():
    with pytest.raises(ValidationError):
        KinoraAssertion(**{**ASSERTION.model_dump(), "creator_name": "Alice"})  # extra fields forbidden
    with pytest.raises(ValidationError):
        KinoraAssertion(**{**ASSERTION.model_dump(), "consent_hash": "alice@example.com"})
    assert KinoraAssertion.label == "org.kinora.generation"


def test_claim_generator_is_taken_from_the_caller(unsigned, material, tmp_path):
    dst = tmp_path / "branded.mp4"
    sign_mp4(unsigned, dst, assertion=ASSERTION, title="t", material=material, claim_generator="Kinora Studio")
    assert read_manifest(dst).claim_generator.startswith("Kinora Studio/")
