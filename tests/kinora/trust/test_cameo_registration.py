"""Cameo registration: challenge, recording, attestation; every way it must refuse, refusing whole."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kinora.stores import cameos as cameo_store
from kinora.stores import utcnow
from kinora.stores.schema import cameo_challenges
from kinora.trust import cameos as service
from kinora.trust.keys import public_b64
from kinora.trust.ledger import LedgerKey, verify
from kinora.trust.verifier import Attestation, LocalFormatVerifier, sign_attestation


@pytest.fixture
def challenge(seeded, settings):
    with seeded.engine.begin() as conn:
        return service.start_challenge(conn=conn, settings=settings, user_id="usr_studio", handle="studio_cam", kind="person")


def _register(stores, settings, challenge_id, recording=None, **kw):
    return service.register(engine=stores.engine, settings=settings, media=stores.media, user_id="usr_studio",
                            challenge_id=challenge_id, recording=recording or service.synthetic_recording(), **kw)


def _state(stores):
    """What a refused registration must leave unchanged: cameos, ledger, media files."""
    with stores.engine.connect() as conn:
        cameos = len(cameo_store.cameos_by_handles(conn=conn, handles=["studio_cam"]))
        entries = len(cameo_store.list_ledger(conn=conn))
    files = sorted(p.name for p in stores.media.root.rglob("*") if p.is_file()) if stores.media.root.exists() else []
    return cameos, entries, files


def test_challenge_is_random_and_expires_in_minutes(challenge, settings):
    assert len(challenge.digits) == settings.consent.challenge_digits and challenge.digits.isdigit()
    assert len(challenge.head_turns) == settings.consent.challenge_head_turns
    assert set(challenge.head_turns) <= {"left", "right", "up", "down"}
    ttl = (challenge.expires_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()
    assert 0 < ttl <= settings.consent.challenge_ttl_s


def test_registration_creates_a_verified_cameo_with_encrypted_media_and_a_signed_grant(seeded, settings, challenge):
    cameo = _register(seeded, settings, challenge.id, permission="approved", restrictions=["no political content"])
    assert cameo.verified and cameo.handle == "studio_cam" and cameo.permission == "approved"
    assert cameo.attestation["verdict"] == "pass" and "face matches the account holder" in cameo.attestation["not_checked"]
    kinds = {m["kind"] for m in cameo.media}
    assert kinds == {"reference_image", "voice_sample"}
    for m in cameo.media:
        blob = seeded.media.get_bytes(m["key"])
        assert not blob.startswith((b"\xff\xd8", b"RIFF"))  # neither JPEG nor WAV on disk: encrypted
    image = service.reference_media(settings=settings, media=seeded.media, cameo=cameo, kind="reference_image")
    voice = service.reference_media(settings=settings, media=seeded.media, cameo=cameo, kind="voice_sample")
    assert image.startswith(b"\xff\xd8") and voice.startswith(b"RIFF")
    with seeded.engine.connect() as conn:
        grant = cameo_store.list_ledger(conn=conn, cameo_id=cameo.id)
        report = verify(conn=conn, public_keys=[LedgerKey.for_settings(settings).public])
    assert [e.action for e in grant] == ["grant"] and grant[0].detail["permission"] == "approved"
    assert report.ok


def test_a_challenge_cannot_be_replayed(seeded, settings, challenge):
    _register(seeded, settings, challenge.id)
    before = _state(seeded)
    with pytest.raises(service.CameoError) as err:
        _register(seeded, settings, challenge.id)
    assert err.value.status == 409 and "already used" in err.value.message
    assert _state(seeded) == before


def test_an_expired_challenge_is_refused(seeded, settings, challenge):
    with seeded.engine.begin() as conn:
        conn.execute(cameo_challenges.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    before = _state(seeded)
    with pytest.raises(service.CameoError) as err:
        _register(seeded, settings, challenge.id)
    assert err.value.status == 410 and "expired" in err.value.message
    assert _state(seeded) == before


def test_another_users_challenge_is_not_found(seeded, settings, challenge):
    with pytest.raises(service.CameoError) as err:
        service.register(engine=seeded.engine, settings=settings, media=seeded.media, user_id="usr_alice",
                         challenge_id=challenge.id, recording=service.synthetic_recording())
    assert err.value.status == 404


class _UntrustedVerifier:
    """A verifier whose key settings do not list."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()

    def verify(self, challenge, recording):
        return sign_attestation(self.key, Attestation(
            challenge_id=challenge.id, user_id=challenge.user_id, handle=challenge.handle,
            recording_sha256=hashlib.sha256(recording).hexdigest(), verdict="pass", reason="looks fine", checked=[],
            not_checked=[], verifier="rogue", issued_at=utcnow(), public_key=public_b64(self.key)))


class _TamperingVerifier(LocalFormatVerifier):
    """Signs honestly with the trusted key, then a field is changed in transit."""

    def __init__(self, settings, **change):
        super().__init__(settings)
        self.change = change

    def verify(self, challenge, recording):
        return super().verify(challenge, recording).model_copy(update=self.change)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: _UntrustedVerifier(), "does not trust"),
        (lambda s: _TamperingVerifier(s, verdict="pass", reason="edited"), "does not verify"),
        (lambda s: _TamperingVerifier(s, signature="A" * 88), "does not verify"),
    ],
    ids=["wrong-key", "altered-after-signing", "forged-signature"],
)
def test_untrusted_or_forged_attestations_are_refused(seeded, settings, challenge, make, message):
    before = _state(seeded)
    with pytest.raises(service.CameoError) as err:
        _register(seeded, settings, challenge.id, verifier=make(settings))
    assert err.value.status == 403 and message in err.value.message
    assert _state(seeded) == before
    with seeded.engine.connect() as conn:  # a refusal about the attestation leaves the challenge usable
        assert cameo_store.get_challenge(conn=conn, challenge_id=challenge.id).used_at is None


def test_an_attestation_for_another_recording_is_refused(seeded, settings, challenge):
    class SwapRecording(LocalFormatVerifier):
        def verify(self, challenge, recording):
            return super().verify(challenge, service.synthetic_recording(seconds=3.0))

    with pytest.raises(service.CameoError) as err:
        _register(seeded, settings, challenge.id, verifier=SwapRecording(settings))
    assert err.value.status == 403 and "different recording" in err.value.message


@pytest.mark.parametrize(
    "recording, reason",
    [(b"not a video at all", "not a readable video"), ("short", "must last")],
)
def test_recordings_the_verifier_refuses_give_422_and_nothing_stored(seeded, settings, challenge, recording, reason):
    if recording == "short":
        recording = service.synthetic_recording(seconds=1.0)
    before = _state(seeded)
    with pytest.raises(service.CameoError) as err:
        _register(seeded, settings, challenge.id, recording=recording)
    assert err.value.status == 422 and reason in err.value.message
    assert _state(seeded) == before


def test_delete_erases_reference_media_and_keeps_the_history(seeded, settings, challenge):
    cameo = _register(seeded, settings, challenge.id)
    paths = [seeded.media.path(m["key"]) for m in cameo.media]
    assert all(p.exists() for p in paths)
    with seeded.engine.begin() as conn:
        service.delete(conn=conn, settings=settings, media=seeded.media, owner_id="usr_studio", handle="studio_cam")
    assert not any(p.exists() for p in paths)
    with seeded.engine.connect() as conn:
        row = cameo_store.get_cameo(conn=conn, cameo_id=cameo.id)
        actions = [e.action for e in cameo_store.list_ledger(conn=conn, cameo_id=cameo.id)]
    assert row.deleted_at is not None and row.media == []
    assert actions == ["grant", "revoke", "delete"]


def test_production_refuses_the_local_verifier(tmp_path):
    from pydantic import ValidationError

    from kinora.settings import Settings

    with pytest.raises(ValidationError, match="trust_local_verifier"):
        Settings(home=tmp_path, environment="production",
                 provenance={"chain_path": tmp_path / "c.pem", "key_path": tmp_path / "k.pem"})
