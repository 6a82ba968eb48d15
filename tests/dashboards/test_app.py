from datetime import UTC, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from kinora.stores.lake import Lake

PAGE = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def _row(rid, status, campaign):
    return dict(request_id=rid, campaign_id=campaign, requester_id="u", source="campaign", status=status,
                reason="cameo @carol may be used by its owner only" if status.startswith("blocked") else None,
                video_id=None, model_family="ltx2", model_version="t", seed=1, duration_s=2.0, consent_s=0.01,
                rights_s=0.01, generate_s=1.0 if status == "published" else None, stamp_s=0.2 if status == "published" else None,
                publish_s=0.01 if status == "published" else None, ts=datetime.now(UTC))


def test_page_says_plainly_when_there_is_no_data(monkeypatch, tmp_path):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("No campaign has run yet" in i.value for i in at.info)


def test_page_shows_the_funnel(monkeypatch, tmp_path):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path))
    lake = Lake(tmp_path / "lake")
    lake.append("generations", [_row("a", "published", "launch"), _row("b", "published", "launch"),
                                _row("c", "blocked_consent", "launch"), _row("d", "blocked_rights", "other")])
    lake.append("videos", [dict(video_id="v1", request_id="a", creator_id="u", campaign_id="launch", prompt="harbour",
                                duration_ms=2000, width=256, height=256, model_family="ltx2", model_version="t",
                                c2pa_state="Valid", cameo_count=0, published_at=datetime.now(UTC))])
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Requested"] == "4" and values["Published"] == "2" and values["Blocked consent"] == "1"
    assert values["Blocked rights"] == "1"
    videos = at.dataframe[-1].value
    assert list(videos["video_id"]) == ["v1"]
    # the campaign filter narrows every number
    at.multiselect(key="campaigns").set_value(["other"]).run()
    values = {m.label: m.value for m in at.metric}
    assert values["Requested"] == "1" and values["Published"] == "0"
