"""The consent sweep (CLI and Prefect flow) and a person's consent export, on a seeded store with
videos published through the real admit/publish path."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kinora import generation
from kinora.cli import app
from kinora.stores import catalog
from kinora.stores import users as user_store


def _stamped(video_id: str):
    """What the stamping step hands to publish() (the media itself does not matter here)."""
    from kinora.provenance.stamp import StampedVideo
    from kinora.provenance.watermark import content_id_for

    return StampedVideo(video_id=video_id, media_key="videos/none.mp4", thumbnail_key="videos/none.jpg", sha256="0" * 64,
                        model_family="ltx2", model_version="tiny-test", c2pa_state="Valid", claim_generator="test",
                        visible_mark="test", content_id=content_id_for(video_id))


def _publish(stores, settings, requester: str, cameos: list[str], prompt: str, n: int) -> str:
    spec = generation.GenerationSpec(request_id=f"req_t{n}", requester_id=f"usr_{requester}", requester_handle=requester,
                                     prompt=prompt, cameos=cameos, width=256, height=256, duration_s=1.0, fps=24, seed=n)
    with stores.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        assert generation.admit(conn=conn, spec=spec, settings=settings).allowed
        video = generation.publish(conn=conn, spec=spec, stamped=_stamped(f"vid_t{n}"), settings=settings)
    assert video is not None
    return video.video_id


def test_cli_sweep_unpublishes_what_lapsed_and_says_why(seeded, settings, monkeypatch):
    dave = _publish(seeded, settings, "studio", ["dave"], "Dave surfing", 1)  # dave: mutuals; studio is one
    alice = _publish(seeded, settings, "bob", ["alice"], "Alice reading", 2)  # alice: everyone
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    runner = CliRunner()
    quiet = runner.invoke(app, ["consent", "sweep"])
    assert quiet.exit_code == 0 and "0 lapsed, 0 unpublished" in quiet.output

    with seeded.engine.begin() as conn:
        user_store.remove_follow(conn=conn, follower_id="usr_dave", followee_id="usr_studio")
    swept = runner.invoke(app, ["consent", "sweep"])
    assert swept.exit_code == 0 and "1 lapsed, 1 unpublished" in swept.output and dave in swept.output
    with seeded.engine.connect() as conn:
        gone, kept = catalog.get_video(conn=conn, video_id=dave), catalog.get_video(conn=conn, video_id=alice)
    assert gone.unpublished_at is not None and "mutual followers" in gone.unpublished_reason
    assert kept.unpublished_at is None
    again = runner.invoke(app, ["consent", "sweep"])
    assert "0 lapsed, 0 unpublished" in again.output  # nothing twice


def test_sweep_flow_reports_reasons(seeded, settings, monkeypatch, prefect_harness):
    from flows.consent_sweep import consent_sweep

    vid = _publish(seeded, settings, "studio", ["bob"], "Bob planting trees", 3)  # bob approved studio
    with seeded.engine.begin() as conn:
        from kinora.trust import cameos as service

        service.update(conn=conn, settings=settings, owner_id="usr_bob", handle="bob",
                       restrictions=["no political content", "never near trees"])
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    summary = consent_sweep(page=10)
    assert summary.lapsed == 1 and summary.unpublished == 1
    [(reason, count)] = summary.reasons.items()
    assert count == 1 and "never near trees" in reason and "trees" in reason
    with seeded.engine.connect() as conn:
        assert catalog.get_video(conn=conn, video_id=vid).unpublished_at is not None


def test_export_holds_the_whole_consent_and_usage_history(seeded, settings, monkeypatch, tmp_path):
    vid = _publish(seeded, settings, "studio", ["bob"], "Bob juggling", 4)
    with seeded.engine.begin() as conn:
        from kinora.trust import cameos as service

        service.revoke(conn=conn, settings=settings, owner_id="usr_bob", handle="bob")
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    runner = CliRunner()
    out = tmp_path / "bob.json"
    done = runner.invoke(app, ["consent", "export", "bob", "-o", str(out)])
    assert done.exit_code == 0 and "1 cameos" in done.output
    data = json.loads(out.read_text())
    assert data["user"]["handle"] == "bob"
    [cameo] = data["cameos"]
    assert cameo["handle"] == "bob" and cameo["revoked_at"] is not None and cameo["approved"] == ["studio"]
    assert [e["action"] for e in cameo["ledger"]] == ["grant", "use", "revoke"]
    assert all(len(e["entry_hash"]) == 64 for e in cameo["ledger"])
    assert cameo["ledger"][1]["detail"]["video_id"] == vid and cameo["ledger"][1]["actor"] == "studio"
    assert [(u["video_id"], u["use_status"], u["requester"]) for u in cameo["uses"]] == [(vid, "withdrawn", "studio")]
    assert cameo["reference_media"] == ["reference_image", "voice_sample"]  # named, never included
    assert "face" in " ".join(cameo["verification"]["not_checked"])

    studio = json.loads(runner.invoke(app, ["consent", "export", "studio"]).output)
    assert [(u["cameo"], u["detail"]["video_id"]) for u in studio["uses_of_others_cameos"]] == [("bob", vid)]

    unknown = runner.invoke(app, ["consent", "export", "nobody"])
    assert unknown.exit_code == 2 and "unknown user @nobody" in unknown.output and "Traceback" not in unknown.output


def test_export_keeps_the_uses_of_a_deleted_cameo(seeded, settings):
    from kinora.trust import cameos as service
    from kinora.trust.export import export_user

    vid = _publish(seeded, settings, "studio", ["bob"], "Bob on a unicycle", 5)
    with seeded.engine.begin() as conn:
        service.delete(conn=conn, settings=settings, media=seeded.media, owner_id="usr_bob", handle="bob")
    with seeded.engine.connect() as conn:
        [cameo] = export_user(conn=conn, handle="bob")["cameos"]
    assert cameo["deleted_at"] is not None and cameo["reference_media"] == []  # erased
    [use] = cameo["uses"]
    assert (use["video_id"], use["requester"], use["video_state"]) == (vid, "studio", "unpublished")
