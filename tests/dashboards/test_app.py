"""Every dashboard page through Streamlit's AppTest: the numbers the fixture's hand counts give
(tests/dashboards/conftest.py), filters that carry across pages, and a plain sentence on an
install with no data."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
PAGES = ["views/overview.py", "views/feed.py", "views/retention.py", "views/content.py", "views/campaigns.py",
         "views/trust.py", "views/ranking.py"]
TITLES = ["Overview", "Feed engagement", "Retention", "Content and creators", "Campaigns", "Trust and safety", "Ranking"]


@pytest.fixture
def app(fixture_home, monkeypatch):
    monkeypatch.setenv("KINORA_HOME", str(fixture_home["home"]))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame(at: AppTest, first_column: str):
    frames = [d.value for d in at.dataframe if first_column in d.value.columns]
    assert frames, f"no table starting with {first_column}"
    return frames[0]


def test_overview_shows_the_headlines(app):
    m = _metrics(_open(app, "views/overview.py"))
    assert app.title[0].value == "Overview"
    assert (m["Views"], m["Feed sessions"], m["Daily active users (mean)"]) == ("6", "4", "1.7")
    assert (m["Generations requested"], m["Videos published"]) == ("6", "3")
    assert m["Requests blocked (consent or rights)"] == "33.3%" and m["Provenance look-ups"] == "3"


def test_feed_engagement_page(app):
    m = _metrics(_open(app, "views/feed.py"))
    assert (m["Sessions"], m["Views"], m["Completion rate"], m["Likes per view"]) == ("4", "6", "60.0%", "16.7%")
    positions = _frame(app, "position")
    assert positions["impressions"].tolist() == [4, 2]
    active = _frame(app, "dau")
    assert active["mau"].tolist()[-1] == 3


def test_retention_page(app):
    _open(app, "views/retention.py")
    ret = _frame(app, "weeks_since")
    assert ret["active_users"].tolist() == [3, 1] and ret["retained"].round(4).tolist() == [1.0, 0.3333]


def test_content_page(app):
    _open(app, "views/content.py")
    top = _frame(app, "video_id")
    assert top["video_id"].tolist()[:2] == ["v1", "v2"] and top["views"].tolist()[:2] == [3, 2]
    chains = [d.value for d in app.dataframe if "depth" in d.value.columns][0]
    assert chains[["video_id", "depth", "remixes"]].values.tolist() == [["v1", 2, 2]]
    cameos = _frame(app, "handle")
    assert dict(zip(cameos["handle"], cameos["uses"])) == {"alice": 2, "bob": 1}


def test_campaigns_page(app):
    m = _metrics(_open(app, "views/campaigns.py"))
    assert [m[k] for k in ("Requested", "Blocked consent", "Blocked rights", "Failed", "Generated", "Published")] == \
        ["6", "1", "1", "1", "4", "3"]
    assert sorted(_frame(app, "campaign")["campaign"].tolist()) == ["c1", "c2"]


def test_the_sidebar_filters_narrow_the_numbers_and_carry_across_pages(app):
    assert app.multiselect(key="campaigns").options == ["c1", "c2"]
    assert app.multiselect(key="versions").options == ["(by freshness)", "(not ranked by Kinora)", "rk-1", "rk-2"]
    _open(app, "views/campaigns.py")
    app.multiselect(key="campaigns").set_value(["c2"]).run()
    assert _metrics(app)["Requested"] == "1"
    _open(app, "views/overview.py")
    assert app.multiselect(key="campaigns").value == ["c2"]  # the choice followed to the next page
    assert _metrics(app)["Generations requested"] == "1"
    _open(app, "views/feed.py")
    app.multiselect(key="versions").set_value(["rk-1"]).run()
    assert _frame(app, "position")["impressions"].tolist() == [2, 2]
    app.multiselect(key="cohorts").set_value([]).run()
    assert _metrics(app)["Views"] == "6"


def test_trust_and_safety_page(app):
    m = _metrics(_open(app, "views/trust.py"))
    assert [m[k] for k in ("Consent blocks", "Rights blocks", "Cameo revocations", "Takedowns", "Verify look-ups")] == \
        ["1", "1", "1", "2", "3"]
    assert m["Provenance coverage of published videos (invisible mark and signed C2PA)"] == "50.0%"
    rights = _frame(app, "holder")
    assert rights[["holder", "work", "blocks"]].values.tolist() == [["Moonbeam Studios", "Captain Comet", 1]]


def test_ranking_page(app):
    m = _metrics(_open(app, "views/ranking.py"))
    assert m["In production"] == "rk-2"
    versions = _frame(app, "version")
    assert versions["version"].tolist() == ["rk-2", "rk-1"]
    online = _frame(app, "model_version")
    assert set(online["model_version"]) == {"rk-1", "(by freshness)", "(not ranked by Kinora)"}


def test_every_page_says_plainly_when_there_is_no_data(monkeypatch, tmp_path):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    for page, title in zip(PAGES, TITLES):
        _open(at, page)
        assert at.title[0].value == title
        assert any(i.value.startswith("No ") for i in at.info), (page, [i.value for i in at.info])
        assert not at.error
