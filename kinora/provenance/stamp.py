"""Stamp a generated clip: visible watermark and invisible watermark on the frames, one encode to
MP4, signed C2PA carrying the watermark's content id as a soft binding.

The marks go on the raw frames so the video is encoded once. The encoded, signed file is then
checked the way a verifier would: its manifest must validate and its pixels must decode to the
content id, before it enters the media store; a video missing any stamp is never published.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from kinora.ids import stable_id
from kinora.provenance.c2pa_manifest import SOFT_BINDING_ALG, KinoraAssertion, read_manifest, sign_mp4
from kinora.provenance.certs import SignerMaterial
from kinora.provenance.visible import apply_visible_watermark, plan_visible_watermark
from kinora.provenance.audio_watermark import RATE as AUDIO_RATE
from kinora.provenance.audio_watermark import detect_audio, embed_audio, read_audio
from kinora.provenance.watermark import content_id_for, detect_file, embed
from kinora.settings import Settings
from kinora.stores import utcnow
from kinora.stores.media import MediaStore
from models.generation.types import Clip
from models.media import encode_mp4, write_thumbnail


class StampError(RuntimeError):
    """The stamped file failed its own provenance check."""


@dataclass(frozen=True)
class StampedVideo:
    video_id: str
    media_key: str
    thumbnail_key: str
    sha256: str
    model_family: str
    model_version: str
    c2pa_state: str
    claim_generator: str | None
    visible_mark: str
    content_id: int | None = None  # the invisible watermark's 48-bit payload
    manifest_sha256: str | None = None  # of the embedded C2PA manifest store
    watermark: dict = field(default_factory=dict)  # what the check read back: confidence, strength
    seconds: float = 0.0  # wall time of the whole stamp: mark, encode, sign, check, store
    timings: dict = field(default_factory=dict)  # seconds: mark, mux (H.264+AAC encode), sign, check, store

    def missing_stamps(self) -> list[str]:
        """What this video lacks of the three stamps publishing requires (empty when complete)."""
        missing = []
        if not self.visible_mark:
            missing.append("visible watermark")
        if self.content_id is None:
            missing.append("invisible watermark")
        if self.c2pa_state not in {"Valid", "Trusted"}:
            missing.append(f"valid C2PA manifest (state {self.c2pa_state!r})")
        return missing

    def provenance_summary(self) -> dict:
        return {
            "c2pa_state": self.c2pa_state,
            "claim_generator": self.claim_generator,
            "visible_mark": self.visible_mark,
            "sha256": self.sha256,
            "content_id": f"{self.content_id:012x}" if self.content_id is not None else None,
            "manifest_sha256": self.manifest_sha256,
            "watermark": self.watermark,
        }


def stamp_clip(
    clip: Clip,
    *,
    request_id: str,
    creator_handle: str,
    title: str,
    consent_hash: str,
    rights_hash: str,
    media: MediaStore,
    material: SignerMaterial,
    settings: Settings,
    parent: Path | None = None,
) -> StampedVideo:
    """Watermark, encode, sign and store ``clip``; return where it lies and what it carries.

    ``parent``: for a remix, the parent MP4, recorded as an ingredient with a ``c2pa.edited`` action.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    lap = time.perf_counter()

    def split(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[name], lap = now - lap, now

    video_id = stable_id("vid", request_id)
    day = utcnow().strftime("%Y/%m/%d")
    media_key, thumb_key = f"videos/{day}/{video_id}.mp4", f"thumbnails/{day}/{video_id}.jpg"
    frames = apply_visible_watermark(clip.frames, handle=creator_handle, fps=clip.fps, settings=settings.provenance)
    mark = plan_visible_watermark(len(frames), frames.shape[1], frames.shape[2], handle=creator_handle, fps=clip.fps,
                                  settings=settings.provenance).text
    content_id = content_id_for(video_id)
    frames = embed(frames, content_id, strength=settings.provenance.watermark_strength)
    audio, audio_rate = clip.audio, clip.sample_rate
    if audio is not None and settings.provenance.audio_watermark_depth > 0:
        audio = embed_audio(audio, audio_rate, content_id, depth=settings.provenance.audio_watermark_depth)
        audio_rate = AUDIO_RATE
    split("mark")
    assertion = KinoraAssertion(
        model_family=clip.model_family, model_version=clip.model_version, seed=clip.seed,
        request_id=request_id, consent_hash=consent_hash, rights_hash=rights_hash,
    )
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir, prefix="stamp-") as tmp:
        raw, signed, thumb = Path(tmp) / "raw.mp4", Path(tmp) / "signed.mp4", Path(tmp) / "thumb.jpg"
        encode_mp4(frames, audio, fps=clip.fps, sample_rate=audio_rate, out_path=raw, settings=settings.media)
        split("mux")
        signed_info = sign_mp4(raw, signed, assertion=assertion, title=title, material=material,
                               claim_generator=settings.provenance.claim_generator, parent=parent, content_id=content_id)
        split("sign")
        report = read_manifest(signed, trust_anchors_pem=material.root_pem)
        if not report.present or report.validation_state not in {"Valid", "Trusted"}:
            raise StampError(f"signed file does not validate: {report.validation_state} {report.errors}")
        if report.soft_binding != f"{content_id:012x}":
            raise StampError(f"signed file's soft binding {report.soft_binding} is not its content id {content_id:012x}")
        found = detect_file(signed)
        if found.content_id != content_id:
            raise StampError(f"the encoded file's invisible watermark does not read back (z={found.confidence})")
        sound = read_audio(signed)
        heard = detect_audio(*sound) if sound is not None else None  # best effort: silence carries nothing
        write_thumbnail(frames[0], thumb)
        digest = hashlib.sha256(signed.read_bytes()).hexdigest()
        media.put_file(signed, media_key)
        media.put_file(thumb, thumb_key)
        split("check_and_store")
    return StampedVideo(
        video_id=video_id, media_key=media_key, thumbnail_key=thumb_key, sha256=digest,
        model_family=clip.model_family, model_version=clip.model_version, c2pa_state=report.validation_state,
        claim_generator=report.claim_generator, visible_mark=mark, content_id=content_id,
        manifest_sha256=signed_info.manifest_sha256,
        watermark={"alg": SOFT_BINDING_ALG, "strength": settings.provenance.watermark_strength,
                   "confidence": found.confidence, "bit_agreement": found.bit_agreement,
                   "audio_depth": settings.provenance.audio_watermark_depth,
                   "audio_read_back": heard is not None and heard.content_id == content_id},
        seconds=time.perf_counter() - t0, timings=timings,
    )


def stamp_request(clip: Clip, *, spec, admission, media: MediaStore, material: SignerMaterial, settings: Settings) -> StampedVideo:
    """Stamp the clip of an admitted request (``kinora.generation`` spec and admission)."""
    with media.local_file(spec.remix_media_key) if spec.remix_media_key else nullcontext() as parent:
        return stamp_clip(
            clip, request_id=spec.request_id, creator_handle=spec.requester_handle, title=spec.prompt[:80],
            consent_hash=admission.consent.digest(), rights_hash=admission.rights.digest(), media=media,
            material=material, settings=settings, parent=parent,
        )
