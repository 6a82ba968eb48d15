"""The request lifecycle without Prefect or Ray: admission, publish once, revocation before publish."""
import pytest

from kinora import generation
from kinora.provenance.stamp import StampedVideo
from kinora.provenance.watermark import content_id_for
from kinora.stores import cameos as cameo_store
from kinora.stores import catalog
from kinora.stores import jobs as job_store


def _spec(**kw):
    base = dict(request_id="req_t1", requester_id="usr_studio", requester_handle="studio", prompt="@alice on a boat",
                cameos=["alice"], width=256, height=256, duration_s=1.0, fps=24, seed=1, campaign_id="c")
    return generation.GenerationSpec(**(base | kw))


def _stamped(video_id="vid_t1"):
    return StampedVideo(video_id=video_id, media_key="videos/x.mp4", thumbnail_key="thumbnails/x.jpg", sha256="a" * 64,
                        model_family="ltx2", model_version="tiny", c2pa_state="Valid", claim_generator="Kinora",
                        visible_mark="Kinora @studio", content_id=content_id_for(video_id))


def test_publish_once_and_record_the_use(seeded, settings):
    spec = _spec()
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        assert generation.admit(conn=conn, spec=spec, settings=settings).allowed
        first = generation.publish(conn=conn, spec=spec, stamped=_stamped(), settings=settings)
        second = generation.publish(conn=conn, spec=spec, stamped=_stamped("vid_other"), settings=settings)
        uses = [e for e in cameo_store.list_ledger(conn=conn) if e.action == "use"]
        job = job_store.get_job(conn=conn, job_id=spec.request_id)
        stages = [d.stage for d in job_store.list_decisions(conn=conn, job_id=spec.request_id)]
    assert not first.already_published and second.already_published
    assert second.video_id == "vid_t1"
    assert len(uses) == 1 and uses[0].detail["video_id"] == "vid_t1"
    assert job.status == "succeeded" and job.video_id == "vid_t1"
    assert stages == ["consent", "rights", "publish"]


def test_revocation_during_generation_blocks_publishing(seeded, settings):
    spec = _spec(request_id="req_t2")
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        assert generation.admit(conn=conn, spec=spec, settings=settings).allowed
        cameo_store.revoke_cameo(conn=conn, cameo_id="cam_alice")  # while the clip is being made
        assert generation.publish(conn=conn, spec=spec, stamped=_stamped("vid_t2"), settings=settings) is None
    with seeded.engine.connect() as conn:
        job = job_store.get_job(conn=conn, job_id="req_t2")
        assert catalog.get_video(conn=conn, video_id="vid_t2") is None
    assert job.status == "blocked" and "revoked" in job.reason


def test_stamp_reports_its_own_timings(tmp_path, settings, tiny_generator):
    from kinora.provenance.certs import load_signer_material
    from kinora.provenance.stamp import stamp_clip
    from kinora.stores.media import MediaStore
    from models.generation.types import ClipRequest

    clip = tiny_generator.generate([ClipRequest(prompt="a test", width=256, height=256, duration_s=1.0, seed=1)])[0]
    stamped = stamp_clip(clip, request_id="req_t3", creator_handle="alice", title="a test", consent_hash="a" * 64,
                         rights_hash="b" * 64, media=MediaStore(tmp_path / "media"),
                         material=load_signer_material(settings.provenance, settings.cert_dir), settings=settings)
    assert set(stamped.timings) == {"mark", "mux", "sign", "check_and_store"}
    assert 0 < stamped.timings["mux"] < stamped.seconds
    assert sum(stamped.timings.values()) <= stamped.seconds + 1e-6
    assert (tmp_path / "media" / stamped.media_key).is_file()


def test_a_cameo_request_is_conditioned_on_the_cameos_reference_image(seeded, settings):
    import io

    import numpy as np
    from PIL import Image, ImageOps

    from kinora.trust import cameos as cameo_service
    from kinora.trust.cameos import reference_media

    def spec(cameos):
        return generation.GenerationSpec(request_id="req_ref", requester_id="usr_bob", requester_handle="bob",
                                         prompt="@alice waving", cameos=cameos, width=256, height=192, duration_s=1.0,
                                         fps=24, seed=1)

    with seeded.engine.connect() as conn:
        alice = cameo_store.get_cameo_by_handle(conn=conn, handle="alice")
    stored = Image.open(io.BytesIO(reference_media(settings=settings, media=seeded.media, cameo=alice,
                                                   kind="reference_image"))).convert("RGB")
    request = generation.clip_request(spec(["alice"]), seeded.media, settings, seeded.engine)
    assert request.reference_image.shape == (192, 256, 3) and request.reference_image.dtype == np.uint8
    expected = np.asarray(ImageOps.fit(stored, (256, 192), Image.Resampling.BICUBIC))
    assert np.array_equal(request.reference_image, expected)  # the decrypted image, fitted to the clip
    assert generation.clip_request(spec([]), seeded.media, settings, seeded.engine).reference_image is None

    with seeded.engine.begin() as conn:  # deleting the cameo erases its media: nothing left to condition on
        cameo_service.delete(conn=conn, settings=settings, media=seeded.media, owner_id=alice.owner_id, handle="alice")
    assert generation.clip_request(spec(["alice"]), seeded.media, settings, seeded.engine).reference_image is None


@pytest.mark.parametrize("change, missing", [
    ({"content_id": None}, "invisible watermark"),
    ({"c2pa_state": "Invalid"}, "valid C2PA manifest"),
    ({"visible_mark": ""}, "visible watermark"),
])
def test_publishing_refuses_a_video_missing_a_stamp(seeded, settings, change, missing):
    import dataclasses

    spec = _spec()
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        assert generation.admit(conn=conn, spec=spec, settings=settings).allowed
    with pytest.raises(generation.UnstampedError, match=missing), seeded.engine.begin() as conn:
        generation.publish(conn=conn, spec=spec, stamped=dataclasses.replace(_stamped(), **change), settings=settings)
    with seeded.engine.connect() as conn:
        assert catalog.get_video_by_job(conn=conn, job_id=spec.request_id) is None  # nothing published
