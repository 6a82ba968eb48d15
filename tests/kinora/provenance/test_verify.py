"""Verify: one file, three readings (C2PA, watermark, catalog), one verdict; the CLI and the public
HTTP endpoint. The published file comes from the real stamping step and the real publish path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kinora import generation
from kinora.cli import app
from kinora.provenance import attacks
from kinora.provenance.attacks import flip_media_byte
from kinora.provenance.certs import load_signer_material
from kinora.provenance.stamp import stamp_request
from kinora.settings import MediaSettings
from kinora.stores import catalog
from models.generation.types import Clip
from models.media import encode_mp4
from models.synthetic import panning_clip


@pytest.fixture
def published(seeded, settings):
    """A 384x384 clip with sound, stamped and published for @studio; returns (file path, video row)."""
    spec = generation.GenerationSpec(request_id="req_verify", requester_id="usr_studio", requester_handle="studio",
                                     prompt="A paper lantern over a lake", width=384, height=384, duration_s=2.0,
                                     fps=24, seed=5)
    t = np.arange(96_000) / 48_000  # chords with a little noise: sound the audio mark can live in
    rng = np.random.default_rng(2)
    audio = (sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440, 1200, 2500))
             + 0.02 * rng.normal(size=t.size)).astype(np.float32)[None]
    clip = Clip(frames=panning_clip(384, 384, 48, seed=11), audio=audio, fps=24, sample_rate=48_000, seed=5,
                model_family="ltx2", model_version="test")
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        admission = generation.admit(conn=conn, spec=spec, settings=settings)
        stamped = stamp_request(clip, spec=spec, admission=admission, media=seeded.media,
                                material=load_signer_material(settings.provenance, settings.cert_dir), settings=settings)
        video = generation.publish(conn=conn, spec=spec, stamped=stamped, settings=settings)
        row = catalog.get_video(conn=conn, video_id=video.video_id)
    assert row.content_id == stamped.content_id and stamped.watermark["confidence"] > 10
    assert "audio_read_back" in stamped.watermark  # best effort: 2 s of sound is often too short after AAC
    stored = row.provenance  # each stamp, for the dashboards' coverage figures
    assert stored["content_id"] == f"{row.content_id:012x}" and len(stored["manifest_sha256"]) == 64
    assert stored["watermark"]["strength"] == 3.0 and stored["c2pa_state"] == "Trusted" and stored["visible_mark"]
    return seeded.media.path(row.media_key), row


def _verify(seeded, settings, path):
    from kinora.provenance.verify import verify_file

    material = load_signer_material(settings.provenance, settings.cert_dir)
    with seeded.engine.connect() as conn:
        return verify_file(path, conn=conn, trust_anchors_pem=material.root_pem)


def test_the_published_file_is_intact(seeded, settings, published):
    path, row = published
    report = _verify(seeded, settings, path)
    assert report.verdict == "intact" and report.verdict_text == "made by this Kinora (intact)"
    assert report.c2pa.state == "trusted" and report.c2pa.soft_binding == f"{row.content_id:012x}"
    assert report.watermark.found and report.watermark.content_id == f"{row.content_id:012x}"
    assert report.audio_watermark.content_id in {None, f"{row.content_id:012x}"}  # never another id
    assert report.catalog.video_id == row.id and report.catalog.same_file and report.catalog.state == "published"


def test_a_reencoded_copy_without_metadata_is_still_ours(seeded, settings, published, tmp_path):
    from models.media import read_frames

    path, row = published
    copy = tmp_path / "reupload.mp4"  # what a re-upload does: decode, shrink, encode again, no manifest
    encode_mp4(attacks.resize(read_frames(path), 0.5), None, fps=24, sample_rate=48_000, out_path=copy,
               settings=MediaSettings(crf=23))
    report = _verify(seeded, settings, copy)
    assert report.c2pa.state == "absent"
    assert report.verdict == "stripped_or_reencoded", report.reasons
    assert report.catalog.video_id == row.id and not report.catalog.same_file


def test_one_edited_byte_of_video_data_is_tampered(seeded, settings, published, tmp_path):
    path, _ = published
    edited = tmp_path / "edited.mp4"
    shutil.copy(path, edited)
    flip_media_byte(edited)
    report = _verify(seeded, settings, edited)
    assert report.verdict == "tampered" and report.c2pa.state == "invalid"
    assert any("mismatch" in c for c in report.c2pa.codes)


def test_a_video_from_elsewhere_is_unknown(seeded, settings, tmp_path):
    other = tmp_path / "other.mp4"
    encode_mp4(panning_clip(256, 256, 24, seed=77), None, fps=24, sample_rate=48_000, out_path=other,
               settings=MediaSettings())
    report = _verify(seeded, settings, other)
    assert report.verdict == "unknown" and not report.watermark.found and report.catalog is None


def test_a_manifest_on_other_pixels_is_tampered():
    from kinora.provenance.verify import C2paCheck, WatermarkCheck, _decide

    c2pa = C2paCheck(state="trusted", soft_binding="0000000000aa")
    mark = WatermarkCheck(found=True, content_id="0000000000bb", confidence=20.0, bit_agreement=1.0, scale=1.0,
                          frames_read=48)
    verdict, reasons = _decide(c2pa, mark, None, None)
    assert verdict == "tampered" and "0000000000aa" in reasons[0] and "0000000000bb" in reasons[0]


def test_the_soundtrack_alone_can_tie_a_file_to_its_video():
    from types import SimpleNamespace

    from kinora.provenance.verify import AudioWatermarkCheck, C2paCheck, WatermarkCheck, _decide

    row = SimpleNamespace(id="vid_x", content_id=0xAB)
    no_pixels = WatermarkCheck(found=False, confidence=4.0, bit_agreement=0.0, scale=1.0, frames_read=48)
    heard = AudioWatermarkCheck(found=True, content_id="0000000000ab", bit_agreement=0.98, seconds_read=10.0)
    verdict, reasons = _decide(C2paCheck(state="absent"), no_pixels, None, row, heard)
    assert verdict == "stripped_or_reencoded" and "soundtrack" in reasons[0] and "vid_x" in reasons[0]


def test_cli_verify_json_and_exit_codes(seeded, settings, published, monkeypatch, tmp_path):
    path, row = published
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(path), "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["verdict"] == "intact" and data["catalog"]["video_id"] == row.id
    edited = tmp_path / "edited.mp4"
    shutil.copy(path, edited)
    flip_media_byte(edited)
    bad = runner.invoke(app, ["verify", str(edited)])
    assert bad.exit_code == 1 and "tampered" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.mp4")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    verdicts = [(r["source"], r["verdict"]) for r in seeded.lake.read("verifications").to_pylist()]
    assert sorted(verdicts) == [("cli", "intact"), ("cli", "tampered")]  # the missing file was no look-up


def test_http_verify_is_public_and_refuses_bad_uploads(seeded, settings, published):
    from serving.api import create_api

    path, row = published

    async def never(_request):
        raise AssertionError("verify does not generate")

    small = settings.model_copy(update={"provenance": settings.provenance.model_copy(update={"verify_max_bytes": 2_000_000})})
    api = create_api(settings=small, stores=seeded, generate=never,
                     material=load_signer_material(settings.provenance, settings.cert_dir))
    with TestClient(api) as client:  # no API key
        ok = client.post("/v1/provenance/verify", content=path.read_bytes(), headers={"Content-Type": "video/mp4"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["verdict"] == "intact" and ok.json()["catalog"]["video_id"] == row.id
        empty = client.post("/v1/provenance/verify", content=b"")
        assert empty.status_code == 422 and "empty" in empty.json()["detail"]
        junk = client.post("/v1/provenance/verify", content=b"not a video at all" * 100)
        assert junk.status_code == 422 and "not a video" in junk.json()["detail"]
        big = client.post("/v1/provenance/verify", content=b"\0" * 2_000_001)
        assert big.status_code == 413 and "2000000" in big.json()["detail"]
    looked_up = seeded.lake.read("verifications").to_pylist()  # answered look-ups reach the trust dashboard
    assert [(r["source"], r["verdict"], r["c2pa_state"], r["video_id"]) for r in looked_up] == [("api", "intact", "trusted", row.id)]
