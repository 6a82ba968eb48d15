"""Liveness challenges, verifier attestations, and the embedded (format-only) verifier.

Registration: Kinora issues a challenge (digits to read aloud, a sequence of head turns; single
use; expires after ``consent.challenge_ttl_s``). The person records a clip doing it. A verifier
(pluggable: ``consent.verifier`` names a ``module:Class``) inspects the recording and returns an
:class:`Attestation` signed with its Ed25519 key. Kinora trusts nothing the verifier says until
:func:`check_attestation` has verified the signature against a key that settings trust, and
matched the attestation to this challenge, this person and this recording's SHA-256.

The embedded :class:`LocalFormatVerifier` exists for the demo and tests. **It does not check a
face, liveness, the digits spoken or the head turns**: it checks that the recording decodes, has a
video and an audio stream and lasts between ``recording_min_s`` and ``recording_max_s``, and says
so in every attestation (``not_checked``). Production refuses its key (settings).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
from datetime import datetime
from typing import Literal, Protocol

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kinora.settings import Settings
from kinora.stores import utcnow
from kinora.trust.keys import VERIFIER_KEY_FILE, load_or_create_ed25519, public_b64, sign_b64, verify_ed25519

HEAD_TURNS = ("left", "right", "up", "down")


class ChallengeInfo(BaseModel):
    """What the person was asked to do, as the verifier sees it."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    handle: str
    digits: str
    head_turns: list[str]
    expires_at: datetime


class Attestation(BaseModel):
    """A verifier's signed statement about one recording made for one challenge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    challenge_id: str
    user_id: str
    handle: str
    recording_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    verdict: Literal["pass", "fail"]
    reason: str
    checked: list[str]
    not_checked: list[str]
    verifier: str
    issued_at: datetime
    public_key: str
    signature: str = ""

    def message(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        body = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class Verifier(Protocol):
    """Checks a recording against its challenge and returns a signed attestation (pass or fail)."""

    def verify(self, challenge: ChallengeInfo, recording: bytes) -> Attestation: ...


class RecordingInfo(BaseModel):
    duration_s: float
    width: int
    height: int
    has_audio: bool


class RecordingError(ValueError):
    """The upload is not a usable recording (undecodable, no stream, wrong length)."""


def inspect_recording(recording: bytes) -> RecordingInfo:
    """Open the recording with PyAV and describe it; RecordingError if it does not decode."""
    try:
        with av.open(io.BytesIO(recording), mode="r") as container:
            if not container.streams.video:
                raise RecordingError("the recording has no video stream")
            stream = container.streams.video[0]
            frames = 0
            last_t = 0.0
            for frame in container.decode(video=0):
                frames += 1
                if frame.time is not None:
                    last_t = max(last_t, float(frame.time))
            if frames == 0:
                raise RecordingError("the recording's video stream holds no frames")
            rate = float(stream.average_rate or 0) or 24.0
            duration = last_t + 1.0 / rate
            return RecordingInfo(duration_s=round(duration, 3), width=stream.width, height=stream.height,
                                 has_audio=bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise RecordingError(f"the recording is not a readable video ({exc.strerror or exc})") from None


def extract_reference_media(recording: bytes) -> dict[str, bytes]:
    """The cameo's reference media from a verified recording: the middle frame (JPEG) and the voice (WAV)."""
    from PIL import Image

    out: dict[str, bytes] = {}
    with av.open(io.BytesIO(recording), mode="r") as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    buf = io.BytesIO()
    Image.fromarray(frames[len(frames) // 2]).save(buf, format="JPEG", quality=92)
    out["reference_image"] = buf.getvalue()
    with av.open(io.BytesIO(recording), mode="r") as container:
        if container.streams.audio:
            chunks = [f.to_ndarray() for f in container.decode(audio=0)]
            rate = container.streams.audio[0].rate
            out["voice_sample"] = _wav_bytes(chunks, rate)
    return out


def _wav_bytes(chunks: list[np.ndarray], rate: int) -> bytes:
    import wave

    pcm = np.concatenate([c if c.ndim == 2 else c[None, :] for c in chunks], axis=1)  # [C, S], planar or packed
    pcm = pcm.astype(np.float32)
    mono = pcm.mean(axis=0) if pcm.shape[0] <= 8 else pcm.reshape(-1)
    ints = (np.clip(mono, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return buf.getvalue()


class LocalFormatVerifier:
    """The embedded verifier: checks the recording's format and length only, and signs what it checked."""

    NOT_CHECKED = ["face matches the account holder", "liveness", "digits spoken", "head turns performed"]

    def __init__(self, settings: Settings):
        self.settings = settings
        self.key = load_or_create_ed25519(settings.consent_key_dir / VERIFIER_KEY_FILE)
        self.public_key = public_b64(self.key)

    def verify(self, challenge: ChallengeInfo, recording: bytes) -> Attestation:
        c = self.settings.consent
        checked = ["container decodes", "video stream present", "audio stream present",
                   f"duration within {c.recording_min_s:g}-{c.recording_max_s:g} s"]
        verdict, reason = "pass", "format and duration checks passed (no face or liveness check)"
        try:
            info = inspect_recording(recording)
            if not info.has_audio:
                verdict, reason = "fail", "the recording has no audio stream (the digits must be read aloud)"
            elif not c.recording_min_s <= info.duration_s <= c.recording_max_s:
                verdict, reason = "fail", (f"the recording lasts {info.duration_s:g} s; it must last "
                                           f"{c.recording_min_s:g}-{c.recording_max_s:g} s")
        except RecordingError as exc:
            verdict, reason = "fail", str(exc)
        return sign_attestation(
            self.key,
            Attestation(challenge_id=challenge.id, user_id=challenge.user_id, handle=challenge.handle,
                        recording_sha256=hashlib.sha256(recording).hexdigest(), verdict=verdict, reason=reason,
                        checked=checked, not_checked=self.NOT_CHECKED, verifier="kinora-local-format",
                        issued_at=utcnow(), public_key=self.public_key),
        )


def sign_attestation(key, attestation: Attestation) -> Attestation:
    """Sign ``attestation`` with ``key`` (an Ed25519 private key); its public_key must be key's."""
    return attestation.model_copy(update={"signature": sign_b64(key, attestation.message())})


def load_verifier(settings: Settings) -> Verifier:
    """Instantiate the verifier settings name (``module:Class``, constructed with the settings)."""
    module_name, _, class_name = settings.consent.verifier.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"consent.verifier {settings.consent.verifier!r} cannot be loaded: {exc}") from None
    return cls(settings)


def trusted_keys(settings: Settings) -> list[str]:
    """Public keys whose attestations Kinora accepts: the configured ones, plus the local verifier's in development."""
    keys = list(settings.consent.trusted_verifier_keys)
    if settings.consent.trust_local_verifier:
        keys.append(public_b64(load_or_create_ed25519(settings.consent_key_dir / VERIFIER_KEY_FILE)))
    return keys


class AttestationError(ValueError):
    """An attestation Kinora will not accept; the message says which check failed."""


def check_attestation(attestation: Attestation, *, challenge: ChallengeInfo, recording: bytes, trusted: list[str]) -> None:
    """Raise AttestationError unless ``attestation`` is a trusted, valid, passing statement about this recording."""
    if attestation.public_key not in trusted:
        raise AttestationError("the attestation is signed by a key this platform does not trust")
    if not verify_ed25519(attestation.public_key, attestation.signature, attestation.message()):
        raise AttestationError("the attestation's signature does not verify (forged or altered)")
    if attestation.challenge_id != challenge.id or attestation.user_id != challenge.user_id or attestation.handle != challenge.handle:
        raise AttestationError("the attestation was made for a different challenge")
    if attestation.recording_sha256 != hashlib.sha256(recording).hexdigest():
        raise AttestationError("the attestation was made for a different recording")
    if attestation.verdict != "pass":
        raise AttestationError(f"the verifier refused the recording: {attestation.reason}")
