"""Screening prompts against a cameo owner's free-text restrictions."""

from __future__ import annotations

import pytest

from kinora.trust.restrictions import restriction_terms, screen

POLITICS = ["no political content"]
SWIMWEAR = ["never in swimwear"]


@pytest.mark.parametrize(
    "prompt, restrictions, matched",
    [
        ("Bob giving a political speech", POLITICS, "political"),
        ("two politicians arguing", POLITICS, "politicians"),  # same stem
        ("a crowd at an election night party", POLITICS, "election"),  # the topic, not just the word
        ("shaking hands with the prime minister", POLITICS, "prime minister"),  # a two-word term
        ("a pólitical rally", POLITICS, "political"),  # diacritics folded (the match is named folded)
        ("ａ ｐｏｌｉｔｉｃａｌ debate", POLITICS, "political"),  # full-width letters folded
        ("a politcal cartoon", POLITICS, "politcal"),  # one typo
        ("Alice on the beach in a bikini", SWIMWEAR, "bikini"),
        ("a man in a swimsiut", SWIMWEAR, "swimsiut"),  # transposed letters count as one typo
        ("dancing in LINGERIE", SWIMWEAR, "LINGERIE"),
        ("a wedding toast with wine", ["no alcohol please"], "wine"),
    ],
)
def test_breaking_prompts_are_caught_with_the_word_that_broke_them(prompt, restrictions, matched):
    hit = screen(prompt, restrictions)
    assert hit is not None and hit.restriction == restrictions[0]
    assert hit.matched.lower() == matched.lower()


@pytest.mark.parametrize(
    "prompt, restrictions",
    [
        ("a walk in the park at golden hour", POLITICS),
        ("a video about content creators", POLITICS),  # the restriction's frame words are not terms
        ("a new police policy", POLITICS),  # near "political" but two edits away
        ("cooking pasta in a tiny kitchen", SWIMWEAR),
        ("swimming lessons in a pool, wearing a wetsuit", ["no horror"]),
        ("anything at all", []),
    ],
)
def test_ordinary_prompts_pass(prompt, restrictions):
    assert screen(prompt, restrictions) is None


def test_every_restriction_is_checked_and_the_first_broken_is_named():
    hit = screen("a senator at the harbour", ["never in swimwear", "no political content"])
    assert hit is not None and hit.restriction == "no political content" and hit.matched == "senator"
    both = screen("a senator in swim trunks", ["never in swimwear", "no political content"])
    assert both is not None and both.restriction == "never in swimwear" and both.matched == "swim trunks"


def test_terms_drop_frame_words_and_add_the_topic():
    terms = restriction_terms("Please never show me in swimwear")
    assert "swimwear" in terms and "bikini" in terms
    assert not {"pleas", "never", "show", "me"} & terms
