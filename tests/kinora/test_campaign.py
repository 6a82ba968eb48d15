import pytest

from kinora.campaign import load_campaign, plan_requests
from kinora.demo import DEMO_CAMPAIGN
from kinora.errors import InputFileError


def _plan(seeded, settings, path):
    with seeded.engine.connect() as conn:
        return plan_requests(campaign=load_campaign(path), path=path, conn=conn, settings=settings.generation)


def test_demo_campaign_expands_with_stable_ids(seeded, settings):
    a = _plan(seeded, settings, DEMO_CAMPAIGN)
    b = _plan(seeded, settings, DEMO_CAMPAIGN)
    assert len(a) == 11  # 10 items, one with count 2
    assert [s.request_id for s in a] == [s.request_id for s in b]
    assert len({s.request_id for s in a}) == 11
    boats = [s for s in a if s.prompt.startswith("A paper boat")]
    assert [s.seed for s in boats] == [7, 8]
    assert {s.requester_id for s in a} == {"usr_studio"}


@pytest.mark.parametrize(
    "body, where",
    [
        ("name: x\nrequester: studio\nitems:\n  - id: a\n    prompt: ''\n", "items[0].prompt"),
        ("name: x\nrequester: studio\nitems:\n  - id: a\n    prompt: hi\n    colour: red\n", "items[0].colour"),
        ("name: x\nrequester: studio\nitems: []\n", "items"),
        ("name: x\nitems:\n  - {id: a, prompt: hi}\n", "requester"),
        ("name: x\nrequester: studio\nitems:\n  - {id: a, prompt: hi}\n  - {id: a, prompt: ho}\n", "items"),
        ("name: x\nrequester: studio\nitems: [\n", "line 4"),
    ],
)
def test_malformed_files_name_the_field(tmp_path, body, where):
    f = tmp_path / "c.yaml"
    f.write_text(body)
    with pytest.raises(InputFileError) as exc:
        load_campaign(f)
    assert str(exc.value).startswith(f"{f}: {where}")


@pytest.mark.parametrize(
    "item, where, problem",
    [
        ("{id: a, prompt: hi, resolution: 999x999}", "items[0].resolution", "not allowed"),
        ("{id: a, prompt: hi, duration_s: 60}", "items[0].duration_s", "outside"),
        ("{id: a, prompt: '" + "x" * 2001 + "'}", "items[0].prompt", "at most 2000"),
        ("{id: a, prompt: hi, fps: 30}", "items[0].fps", "generates at 24 fps"),
    ],
)
def test_platform_limits(tmp_path, seeded, settings, item, where, problem):
    f = tmp_path / "c.yaml"
    f.write_text(f"name: x\nrequester: studio\nitems:\n  - {item}\n")
    with pytest.raises(InputFileError, match=problem) as exc:
        _plan(seeded, settings, f)
    assert str(exc.value).startswith(f"{f}: {where}")


def test_unknown_requester(tmp_path, seeded, settings):
    f = tmp_path / "c.yaml"
    f.write_text("name: x\nrequester: nobody\nitems:\n  - {id: a, prompt: hi}\n")
    with pytest.raises(InputFileError, match="requester: unknown user @nobody"):
        _plan(seeded, settings, f)


def test_remix_of_an_unknown_video_is_named(tmp_path, seeded, settings):
    f = tmp_path / "c.yaml"
    f.write_text("name: x\nrequester: studio\nitems:\n  - {id: a, prompt: hi, remix_of: vid_missing}\n")
    with pytest.raises(InputFileError) as exc:
        _plan(seeded, settings, f)
    assert str(exc.value) == f"{f}: items[0].remix_of: no published video vid_missing to remix"
