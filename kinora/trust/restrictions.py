"""Screen a prompt against a cameo owner's free-text restrictions ("no political content",
"never in swimwear").

How: both texts are folded to ASCII (``anyascii``: "pólitical" -> "political"), lower-cased,
split into words and stemmed (Snowball English via ``snowballstemmer``: "politics", "political",
"politician" share the stem "polit"). A restriction's content words (after dropping "no", "never",
"content", ...) are its terms; a term that belongs to a topic in :data:`TOPICS` brings the whole
topic with it ("political" also forbids "election", "senator", "campaign rally"). A prompt breaks
the restriction when one of its words, or two-word phrases, matches a term's stem exactly or when a
prompt word of six letters or more is within one typo of a forbidden word (unstemmed; ``rapidfuzz``
optimal-string-alignment distance 1, so a swapped pair counts once: "swimsiut", "politcal").

What it is not: a semantic classifier. A paraphrase with none of the words ("a man at a podium
asking for votes") passes unless the topic lists it. Issue #5's screening adds that layer for
rights; restrictions can reuse it. The owner's "approve each video" switch is the backstop.
"""

from __future__ import annotations

import functools
import re

import snowballstemmer
from anyascii import anyascii
from pydantic import BaseModel
from rapidfuzz import process
from rapidfuzz.distance import OSA

_STEMMER = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[a-z0-9]+")

# Words a restriction uses to say "don't" rather than what.
_FRAME_WORDS = {
    "no", "not", "never", "dont", "don", "t", "do", "without", "any", "anything", "content", "contents", "video",
    "videos", "me", "my", "i", "in", "on", "of", "with", "the", "a", "an", "as", "at", "to", "or", "and", "be", "is",
    "are", "being", "please", "only", "use", "used", "using", "show", "shown", "showing", "depict", "depicting",
    "wearing", "involving", "about", "related", "kind", "type", "stuff", "things", "thing", "allowed", "ever",
    "must", "should", "may", "can", "cannot", "s", "scenes", "scene",
}

# Topics people restrict most; a restriction naming any word of a topic forbids all of it.
TOPICS: dict[str, tuple[str, ...]] = {
    "politics": ("political", "politics", "politician", "election", "elections", "vote", "voting", "ballot",
                 "campaign rally", "senator", "congress", "parliament", "president", "prime minister", "party rally",
                 "protest", "democrat", "republican", "propaganda"),
    "swimwear": ("swimwear", "swimsuit", "bikini", "swimming trunks", "bathing suit", "speedo", "lingerie",
                 "underwear"),
    "nudity": ("nude", "nudity", "naked", "topless", "sexual", "sexy", "explicit", "erotic"),
    "violence": ("violence", "violent", "gore", "blood", "fight", "fighting", "murder", "kill", "killing",
                 "weapon", "gun", "shooting", "stabbing", "war"),
    "alcohol": ("alcohol", "beer", "wine", "vodka", "whiskey", "drunk", "cocktail"),
    "drugs": ("drugs", "drug", "cocaine", "marijuana", "weed", "smoking", "cigarette", "vape"),
    "religion": ("religion", "religious", "church", "mosque", "temple", "prayer", "priest"),
    "advertising": ("advertising", "advert", "advertisement", "ad", "ads", "commercial", "sponsored", "brand",
                    "endorsement", "product placement"),
    "gambling": ("gambling", "casino", "betting", "poker", "slot machine"),
    "horror": ("horror", "zombie", "scary", "demon", "monster"),
}


def _words(text: str) -> list[str]:
    return _WORD.findall(anyascii(text).lower())


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def _stems(words: list[str]) -> list[str]:
    return [_stem(w) for w in words]


def _phrase_key(phrase: str) -> str:
    return " ".join(_stems(_words(phrase)))


@functools.lru_cache(maxsize=1)
def _topic_index() -> dict[str, frozenset[str]]:
    """Stemmed word or phrase -> every stemmed term of its topic."""
    index: dict[str, frozenset[str]] = {}
    for terms in TOPICS.values():
        keys = frozenset(_phrase_key(t) for t in terms)
        for key in keys:
            index[key] = keys
    return index


@functools.lru_cache(maxsize=65_536)
def restriction_terms(restriction: str) -> frozenset[str]:
    """The stemmed terms (words and two-word phrases) a restriction forbids."""
    words = [w for w in _words(restriction) if w not in _FRAME_WORDS]
    stems = _stems(words)
    terms: set[str] = set(stems)
    topics = _topic_index()
    candidates = stems + [f"{a} {b}" for a, b in zip(stems, stems[1:])]
    for c in candidates:
        terms |= topics.get(c, frozenset())
    return frozenset(t for t in terms if t)


@functools.lru_cache(maxsize=65_536)
def _long_terms(restriction: str) -> tuple[str, ...]:
    """Unstemmed words of six letters or more the restriction forbids (its own and its topics'),
    for one-typo matches. Unstemmed, because stems are short ("polit") and a typo away from
    innocent ones ("polic", from "police")."""
    words = {w for w in _words(restriction) if w not in _FRAME_WORDS}
    stems = set(_stems(sorted(words)))
    for terms in TOPICS.values():
        if stems & {_phrase_key(t) for t in terms}:
            words |= {t for t in terms if " " not in t}
    return tuple(sorted(w for w in words if len(w) >= 6))


class RestrictionHit(BaseModel):
    restriction: str
    matched: str  # the prompt word or phrase that matched


@functools.lru_cache(maxsize=8192)
def _prompt_grams(prompt: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(stem, word) for each word and two-word phrase of ``prompt``; and its words of six letters or
    more, the candidates for one-typo matches. Cached: one prompt is screened against
    each cameo of a request, again before publish and at every feed serve of its video."""
    words = _words(prompt)
    stems = _stems(words)
    pairs = list(zip(stems, words))
    grams = pairs + [(f"{a} {b}", f"{wa} {wb}") for (a, wa), (b, wb) in zip(pairs, pairs[1:])]
    return tuple(grams), tuple(w for w in words if len(w) >= 6)


def screen(prompt: str, restrictions: list[str] | tuple[str, ...]) -> RestrictionHit | None:
    """Return the first restriction ``prompt`` breaks, with the word that broke it, or None."""
    if not restrictions:
        return None
    grams, long_words = _prompt_grams(prompt)
    for restriction in restrictions:
        terms = restriction_terms(restriction)
        for stem, word in grams:
            if stem in terms:
                return RestrictionHit(restriction=restriction, matched=word)
        long_terms = _long_terms(restriction)
        for word in long_words:
            if long_terms and process.extractOne(word, long_terms, scorer=OSA.distance, score_cutoff=1) is not None:
                return RestrictionHit(restriction=restriction, matched=word)
    return None
