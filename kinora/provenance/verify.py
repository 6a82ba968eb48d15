"""Check any video file against this Kinora: its C2PA credentials, its invisible watermark, the
catalog, and one verdict. Used by ``kinora verify`` and ``POST /v1/provenance/verify``.

Verdicts:

- ``intact``: made by this Kinora, file as published: the manifest validates against this
  Kinora's trust anchors (so the media data is unchanged since signing) and binds a content id the
  catalog knows.
- ``stripped_or_reencoded``: made by this Kinora, but the file is not the one published: no
  manifest (stripped), or not ours, while the pixels (or, failing them, the soundtrack) carry a
  content id the catalog knows.
- ``tampered``: the file carries credentials that no longer hold: a manifest that does not
  validate (e.g. one byte of video data edited), or a valid one whose soft binding disagrees with
  the watermark in the pixels (a manifest moved onto other pixels).
- ``unknown``: nothing ties the file to this Kinora.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from kinora.provenance.c2pa_manifest import ManifestReport, read_manifest
from kinora.stores import catalog

Verdict = Literal["intact", "stripped_or_reencoded", "tampered", "unknown"]
VERDICT_TEXT = {
    "intact": "made by this Kinora (intact)",
    "stripped_or_reencoded": "made by this Kinora (metadata stripped or re-encoded)",
    "tampered": "tampered",
    "unknown": "unknown",
}


class C2paCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["trusted", "valid", "invalid", "absent"]
    codes: list[str] = Field(default_factory=list, description="Validation failures as 'code: explanation'.")
    claim_generator: str | None = None
    soft_binding: str | None = Field(None, description="Content id the manifest binds to (12 hex digits).")
    actions: list[str] = Field(default_factory=list)


class WatermarkCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    found: bool
    content_id: str | None = Field(None, description="Decoded 48-bit content id (12 hex digits).")
    confidence: float = Field(description="Pilot correlation peak, z-score (unmarked files sit near 4-5).")
    bit_agreement: float = Field(description="Share of coded bits that agree with the decoded payload.")
    scale: float = Field(description="Visible fraction of the original frame the detector found (1.0: uncropped).")
    frames_read: int


class AudioWatermarkCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    found: bool
    content_id: str | None = Field(None, description="Content id read from the soundtrack (12 hex digits).")
    bit_agreement: float = 0.0
    seconds_read: float = 0.0


class CatalogMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_id: str
    state: Literal["published", "draft", "unpublished"]
    published_at: str | None = None
    same_file: bool = Field(description="The file's SHA-256 equals the published file's.")


class VerifyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    c2pa: C2paCheck
    watermark: WatermarkCheck
    audio_watermark: AudioWatermarkCheck
    catalog: CatalogMatch | None
    verdict: Verdict
    verdict_text: str
    reasons: list[str] = Field(description="Why the verdict, one line each.")


def _c2pa(report: ManifestReport) -> C2paCheck:
    if not report.present:
        state = "absent"
    else:
        state = {"Trusted": "trusted", "Valid": "valid"}.get(report.validation_state or "", "invalid")
    return C2paCheck(state=state, codes=report.errors, claim_generator=report.claim_generator,
                     soft_binding=report.soft_binding, actions=report.actions)


def verify_file(path: Path, *, conn: sa.Connection, trust_anchors_pem: bytes | None) -> VerifyReport:
    """Read ``path`` three ways (manifest, watermark, catalog) and decide the verdict."""
    from kinora.provenance.audio_watermark import detect_audio, read_audio  # torch: loaded when a file is checked
    from kinora.provenance.watermark import detect_file

    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    c2pa = _c2pa(read_manifest(path, trust_anchors_pem=trust_anchors_pem))
    try:
        found = detect_file(path)
        mark = WatermarkCheck(found=found.content_id is not None,
                              content_id=f"{found.content_id:012x}" if found.content_id is not None else None,
                              confidence=found.confidence, bit_agreement=found.bit_agreement, scale=found.scale,
                              frames_read=found.frames_read)
    except Exception as exc:  # not a video PyAV can decode: no watermark to read  # noqa: BLE001
        mark = WatermarkCheck(found=False, confidence=0.0, bit_agreement=0.0, scale=1.0, frames_read=0)
        c2pa.codes.append(f"video.undecodable: {type(exc).__name__}")

    try:
        sound = read_audio(path)
    except Exception:  # noqa: BLE001 - no soundtrack PyAV can decode
        sound = None
    heard = detect_audio(*sound) if sound is not None else None
    audio = AudioWatermarkCheck(found=False) if heard is None else AudioWatermarkCheck(
        found=heard.content_id is not None, bit_agreement=heard.bit_agreement, seconds_read=heard.seconds_read,
        content_id=f"{heard.content_id:012x}" if heard.content_id is not None else None)

    row = None
    for hex_id in dict.fromkeys(x for x in (mark.content_id, c2pa.soft_binding, audio.content_id) if x):
        row = catalog.get_video_by_content_id(conn=conn, content_id=int(hex_id, 16))
        if row is not None:
            break
    match = None
    if row is not None:
        state = "unpublished" if row.unpublished_at else "draft" if row.published_at is None else "published"
        match = CatalogMatch(video_id=row.id, state=state, same_file=row.sha256 == digest,
                             published_at=row.published_at.isoformat() if row.published_at else None)

    verdict, reasons = _decide(c2pa, mark, match, row, audio)
    return VerifyReport(sha256=digest, c2pa=c2pa, watermark=mark, audio_watermark=audio, catalog=match, verdict=verdict,
                        verdict_text=VERDICT_TEXT[verdict], reasons=reasons)


def _decide(c2pa: C2paCheck, mark: WatermarkCheck, match: CatalogMatch | None, row,
            audio: AudioWatermarkCheck | None = None) -> tuple[Verdict, list[str]]:
    ours = row is not None
    heard = audio is not None and audio.found
    if c2pa.state == "invalid":
        return "tampered", [f"the C2PA manifest does not validate: {'; '.join(c2pa.codes) or 'invalid'}"]
    if c2pa.state in {"trusted", "valid"} and mark.found and c2pa.soft_binding and c2pa.soft_binding != mark.content_id:
        return "tampered", [f"the manifest binds content id {c2pa.soft_binding} but the pixels carry {mark.content_id}"]
    if c2pa.state == "trusted" and ours and c2pa.soft_binding == f"{row.content_id:012x}":
        why = [f"the manifest validates against this Kinora's certificates and binds {c2pa.soft_binding}, "
               f"published as {row.id}"]
        if mark.found:
            why.append(f"the watermark reads {mark.content_id} (z {mark.confidence})")
        return "intact", why
    if ours and (mark.found or heard):
        why = "no C2PA manifest" if c2pa.state == "absent" else f"a {c2pa.state} manifest not bound to it by this Kinora"
        carrier = (f"the pixels carry content id {mark.content_id} (z {mark.confidence})" if mark.found
                   else f"the soundtrack carries content id {audio.content_id}")
        return "stripped_or_reencoded", [f"{carrier}, published as {row.id}; the file has {why}"]
    reasons = ["no manifest of this Kinora and no watermark it issued"]
    if mark.found or heard:
        found_id = mark.content_id if mark.found else audio.content_id
        reasons = [f"the file carries content id {found_id}, which this Kinora's catalog does not hold"]
    return "unknown", reasons


def verification_row(report: VerifyReport, *, source: Literal["api", "cli"]) -> dict:
    """The look-up as a ``verifications`` lake row (for the trust and safety dashboard): the
    verdict and what it rested on, never the file."""
    import datetime as dt

    from kinora.ids import new_id

    return dict(verification_id=new_id("ver"), ts=dt.datetime.now(dt.timezone.utc), source=source,
                verdict=report.verdict, c2pa_state=report.c2pa.state, watermark_found=report.watermark.found,
                video_id=report.catalog.video_id if report.catalog else None, sha256=report.sha256)
