import pytest

from kinora.trust.rights import normalise, screen_prompt


@pytest.mark.parametrize(
    "prompt, decision, work",
    [
        ("A sunrise over a harbour", "allow", None),
        ("Captain Comet surfing", "block", "Captain Comet"),
        ("CAPTAIN   comet!!", "block", "Captain Comet"),
        ("the Comet Captain at a party", "block", "Captain Comet"),  # alias
        ("Cäptain Cömet", "block", "Captain Comet"),  # diacritics
        ("Ｇｌｉｍｍｅｒ cola on ice", "block", "Glimmer Cola"),  # full-width
        ("a song like Luna Lark", "allow_with_terms", "Luna Lark"),
        ("a comet in the sky", "allow", None),  # part of a name is not the name
    ],
)
def test_screen(seeded, prompt, decision, work):
    with seeded.engine.connect() as conn:
        result = screen_prompt(conn=conn, prompt=prompt)
    assert result.decision == decision
    if work:
        assert work in [m.work for m in result.matches]
        assert work in result.reason
    else:
        assert result.matches == []


def test_terms_travel_with_the_match(seeded):
    with seeded.engine.connect() as conn:
        result = screen_prompt(conn=conn, prompt="Luna Lark at the beach")
    assert result.matches[0].terms["revenue_share"] == "LL-2026"


def test_normalise():
    assert normalise("Ｍíckey—Mouse!") == " mickey mouse "
