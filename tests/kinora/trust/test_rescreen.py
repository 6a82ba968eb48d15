"""The rights re-screen (CLI after an import, and the Prefect flow), holder defaults, and remixes
carrying their source's rights, on a seeded store with videos published through admit/publish."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kinora import generation
from kinora.cli import app
from kinora.stores import catalog

OPTIMUS_BLOCKED = {"holder": "Hasbro", "work": "Optimus Prime", "kind": "character", "aliases": ["Optimus"],
                   "description": "The heroic leader of the Autobots who transforms from a red and blue truck into a giant robot",
                   "policy": "blocked"}


def _stamped(video_id: str):
    from kinora.provenance.stamp import StampedVideo
    from kinora.provenance.watermark import content_id_for

    return StampedVideo(video_id=video_id, media_key="videos/none.mp4", thumbnail_key="videos/none.jpg", sha256="0" * 64,
                        model_family="ltx2", model_version="tiny-test", c2pa_state="Valid", claim_generator="test",
                        visible_mark="test", content_id=content_id_for(video_id))


def _spec(n: int, prompt: str, requester: str = "studio", remix_of: str | None = None):
    return generation.GenerationSpec(request_id=f"req_r{n}", requester_id=f"usr_{requester}", requester_handle=requester,
                                     prompt=prompt, width=256, height=256, duration_s=1.0, fps=24, seed=n,
                                     remix_of=remix_of)


def _publish(stores, settings, n: int, prompt: str, remix_of: str | None = None) -> str:
    spec = _spec(n, prompt, remix_of=remix_of)
    with stores.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        admission = generation.admit(conn=conn, spec=spec, settings=settings)
        assert admission.allowed, admission.reason
        video = generation.publish(conn=conn, spec=spec, stamped=_stamped(f"vid_r{n}"), settings=settings)
    return video.video_id


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_import_that_blocks_a_work_takes_down_its_videos_and_their_remixes(seeded, settings, monkeypatch, tmp_path):
    source = _publish(seeded, settings, 1, "Optimus Prime waving at a parade")
    remix = _publish(seeded, settings, 2, "the same parade, now at sunset", remix_of=source)
    other = _publish(seeded, settings, 3, "A paper lantern floating over a lake")
    with seeded.engine.connect() as conn:
        assert catalog.get_video(conn=conn, video_id=remix).remix_of == source
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    runner = CliRunner()
    first = runner.invoke(app, ["rights", "rescreen"])  # the seeded registry allows all three
    assert first.exit_code == 0 and "3 videos checked, 0 taken down" in first.output, first.output

    done = runner.invoke(app, ["rights", "import", str(_write_jsonl(tmp_path / "optout.jsonl", [OPTIMUS_BLOCKED]))])
    assert done.exit_code == 0, done.output
    assert "3 videos checked, 2 taken down" in done.output
    with seeded.engine.connect() as conn:
        gone_source, gone_remix, kept = (catalog.get_video(conn=conn, video_id=v) for v in (source, remix, other))
    assert gone_source.unpublished_at is not None
    assert gone_source.unpublished_reason.startswith("rights rescreen: names a work whose holder opted out: Optimus Prime (Hasbro)")
    assert gone_remix.unpublished_at is not None
    assert gone_remix.unpublished_reason.startswith(f"rights rescreen: remix source {source}: names a work whose holder opted out")
    assert kept.unpublished_at is None and kept.unpublished_reason is None

    again = runner.invoke(app, ["rights", "import", str(tmp_path / "optout.jsonl")])  # idempotent: nothing changed
    assert again.exit_code == 0 and "registry unchanged" in again.output


def test_rescreen_flow_runs_only_when_the_registry_changed(seeded, settings, monkeypatch, tmp_path, prefect_harness):
    from flows.rights_rescreen import rights_rescreen

    vid = _publish(seeded, settings, 4, "Optimus Prime directing traffic")
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    baseline = rights_rescreen(page=10)
    assert not baseline.skipped and baseline.checked == 1 and baseline.taken_down == 0
    assert rights_rescreen(page=10).skipped  # nothing changed since

    runner = CliRunner()
    imported = runner.invoke(app, ["rights", "import", "--no-rescreen",
                                   str(_write_jsonl(tmp_path / "optout.jsonl", [OPTIMUS_BLOCKED]))])
    assert imported.exit_code == 0 and "rights rescreen:" not in imported.output
    with seeded.engine.connect() as conn:
        assert catalog.get_video(conn=conn, video_id=vid).unpublished_at is None  # not until the flow runs
    summary = rights_rescreen(page=10)
    assert not summary.skipped and summary.checked == 1 and summary.taken_down == 1
    [(reason, count)] = summary.reasons.items()
    assert count == 1 and "Optimus Prime (Hasbro)" in reason
    with seeded.engine.connect() as conn:
        row = catalog.get_video(conn=conn, video_id=vid)
    assert row.unpublished_at is not None and row.unpublished_reason == f"rights rescreen: {reason}"
    assert rights_rescreen(page=10).skipped


def test_remix_of_an_allowed_work_keeps_its_terms(seeded, settings):
    source = _publish(seeded, settings, 5, "Optimus Prime waving at a parade")
    calm, violent = _spec(6, "the same, with confetti", remix_of=source), _spec(7, "now make it a brutal fight with guns",
                                                                                   remix_of=source)
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=calm)
        generation.register(conn=conn, spec=violent)
        calm = generation.rights_stage(conn=conn, spec=calm, settings=settings)
        violent = generation.rights_stage(conn=conn, spec=violent, settings=settings)
    assert calm.decision == "allow_with_terms" and [m.work for m in calm.matches] == ["Optimus Prime"]
    assert violent.decision == "block"
    assert violent.reason.startswith(f"remix source {source} shows Optimus Prime, which is allowed, but not here")
    assert "no violence" in violent.reason


def test_remix_of_a_source_now_blocked_is_refused_at_submission(seeded, settings, tmp_path):
    from kinora.trust.registry_file import import_rows, read_registry_file

    source = _publish(seeded, settings, 8, "Optimus Prime waving at a parade")
    with seeded.engine.begin() as conn:  # the holder opts out; the source is still up until the re-screen
        import_rows(conn=conn, rows=read_registry_file(_write_jsonl(tmp_path / "optout.jsonl", [OPTIMUS_BLOCKED])))
    spec = _spec(9, "a calm lake at dawn", remix_of=source)
    with seeded.engine.begin() as conn:
        generation.register(conn=conn, spec=spec)
        admission = generation.admit(conn=conn, spec=spec, settings=settings)
    assert not admission.allowed and admission.stage == "rights"
    assert admission.reason.startswith(f"remix source {source}: names a work whose holder opted out: Optimus Prime")


def _decide(seeded, settings, prompt: str):
    from kinora.trust.rights import screen_prompt

    with seeded.engine.connect() as conn:
        return screen_prompt(conn=conn, prompt=prompt, settings=settings.rights)


def test_holder_default_decides_works_left_to_default(seeded, settings, tmp_path):
    from kinora.trust.registry_file import import_rows, read_registry_file

    rows = [{"holder": "Lumen Toys", "work": "Blinky Bot", "kind": "character", "aliases": [], "policy": "default",
             "description": "A small round robot toy that blinks", "holder_default": "blocked"},
            {"holder": "Lumen Toys", "work": "Glow Cat", "kind": "character", "aliases": [], "policy": "allowed",
             "description": "A cat toy that glows in the dark"}]
    with seeded.engine.begin() as conn:
        import_rows(conn=conn, rows=read_registry_file(_write_jsonl(tmp_path / "lumen.jsonl", rows)))
    blocked = _decide(seeded, settings, "Blinky Bot dancing")  # opt_out regime, but the holder blocks by default
    assert blocked.decision == "block"
    assert blocked.reason == "names a work whose holder blocks its works by default: Blinky Bot (Lumen Toys)"
    assert _decide(seeded, settings, "Glow Cat dancing").decision == "allow_with_terms"  # its own policy wins

    rows[0]["holder_default"] = "allowed"
    opt_in = settings.model_copy(update={"rights": settings.rights.model_copy(update={"regime": "opt_in"})})
    with seeded.engine.begin() as conn:
        import_rows(conn=conn, rows=read_registry_file(_write_jsonl(tmp_path / "lumen.jsonl", rows)))
    assert _decide(seeded, opt_in, "Blinky Bot dancing").decision == "allow_with_terms"  # holder opted in wholesale

    rows[0]["holder_default"] = "default"  # back to the platform regime
    with seeded.engine.begin() as conn:
        import_rows(conn=conn, rows=read_registry_file(_write_jsonl(tmp_path / "lumen.jsonl", rows)))
    refused = _decide(seeded, opt_in, "Blinky Bot dancing")
    assert refused.decision == "block" and "opt-in regime" in refused.reason


def test_contradictory_holder_defaults_name_the_line_and_import_nothing(seeded, settings, monkeypatch, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("holder,work,kind,aliases,description,policy,terms,holder_default\n"
                    "Lumen Toys,Blinky Bot,character,,A robot toy,default,,blocked\n"
                    "Lumen Toys,Glow Cat,character,,A cat toy,default,,allowed\n")
    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["rights", "import", str(path)])
    assert result.exit_code == 2
    assert "line 3, field holder_default" in result.output and "contradicts 'blocked'" in result.output
    assert "Traceback" not in result.output
    assert _decide(seeded, settings, "Blinky Bot dancing").decision == "allow"  # nothing was imported
