"""Rights screening per obfuscation technique, the terms, the regime, public figures, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinora.settings import RightsSettings
from kinora.trust.rights import screen_prompt
from kinora.trust.screening import Screener, ScreenerConfig, Work, fold

WORKS = [
    Work("w1", "Disney", "Mickey Mouse", "character", ("Mickey",), "Disney's cartoon mouse mascot with red shorts"),
    Work("w2", "Pokemon", "Pikachu", "character", (), "A yellow electric mouse"),
    Work("w3", "Luna Lark Music", "Luna Lark", "music/artist", ("Lark",), "A folk-pop singer"),
    Work("w4", "Marvel", "Spider-Man", "character", ("Spidey", "Peter Parker"), "A web-slinging superhero"),
]
LEXICAL = Screener(WORKS, ScreenerConfig(embed=False))
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "prompt, work, method",
    [
        ("Mickey Mouse on a boat", "Mickey Mouse", "name"),
        ("MiCkEy MoUsE on a boat", "Mickey Mouse", "name"),
        ("m i c k e y mouse on a boat", "Mickey Mouse", "spacing"),
        ("M.i.c.k.e.y Mouse on a boat", "Mickey Mouse", "spacing"),
        ("p1k4chu in the rain", "Pikachu", "leetspeak"),
        ("Ріkасhu in the rain", "Pikachu", "confusables"),  # Cyrillic Р, і, а, с
        ("Ｐｉｋａｃｈｕ in the rain", "Pikachu", "fullwidth"),
        ("Pi\u200bka\u200dchu in the rain", "Pikachu", "zero_width"),
        ("Pïkáchü in the rain", "Pikachu", "diacritics"),
        ("Pikahcu in the rain", "Pikachu", "misspelling"),
        ("Piakchu in the rain", "Pikachu", "misspelling"),
        ("Spidey on a rooftop", "Spider-Man", "alias"),
        ("spider man on a rooftop", "Spider-Man", "name"),
        ("S p i d e r-Man on a rooftop", "Spider-Man", "spacing"),
        ("Peter Parker on a rooftop", "Spider-Man", "alias"),
        ("a close-up of Lark singing", "Luna Lark", "alias"),
    ],
)
def test_each_technique_is_caught_and_named(prompt, work, method):
    [match] = LEXICAL.screen(prompt)
    assert (match.work.name, match.method) == (work, method)
    assert 0 < match.score <= 1


@pytest.mark.parametrize("prompt", [
    "a lark singing at dawn",  # a common word, not written as a name
    "a skylark over the fields",  # the name inside another word
    "a cartoon mouse eating cheese",
    "a picnic by the river",  # near "pikachu"? no: different first letters and far
    "Maria dancing",  # an ordinary name one edit from nothing registered
])
def test_ordinary_prompts_match_nothing(prompt):
    assert LEXICAL.screen(prompt) == []


def test_fold_keeps_ordinary_punctuation_and_numbers():
    assert fold("Wow! 2 friends, 1990s").words == ("wow", "2", "friends", "1990s")


def test_description_without_the_name_is_caught_by_meaning(seeded):
    with seeded.engine.connect() as conn:
        d = screen_prompt(conn=conn, prompt="the chemistry teacher from that meth show cooking in an RV")
        ok = screen_prompt(conn=conn, prompt="a plumber fixing a leaking sink")
    assert d.decision == "block" and any(m.method == "description" for m in d.matches)
    assert ok.decision == "allow" and ok.matches == []


def test_allowed_work_on_terms_but_not_in_a_forbidden_context(seeded):
    with seeded.engine.connect() as conn:
        fine = screen_prompt(conn=conn, prompt="a beach party with a song by Luna Lark")
        violent = screen_prompt(conn=conn, prompt="a song by Luna Lark over a gun fight")
    assert fine.decision == "allow_with_terms" and fine.matches[0].terms["revenue_share"] == "LL-2026"
    assert violent.decision == "block" and "no violence" in violent.reason


def test_public_figure_needs_her_cameo_to_permit_the_requester(seeded):
    with seeded.engine.connect() as conn:
        anon = screen_prompt(conn=conn, prompt="Mara Quill giving a speech")
        alice = screen_prompt(conn=conn, prompt="Mara Quill giving a speech", requester_id="usr_alice")
        studio = screen_prompt(conn=conn, prompt="Mara Quill giving a speech", requester_id="usr_studio")
    assert anon.decision == "block" and alice.decision == "block" and "cameo" in alice.reason
    assert studio.decision == "allow_with_terms"


def test_regime_decides_works_without_a_policy(seeded, tmp_path, settings):
    from kinora.trust.registry_file import import_rows, read_registry_file

    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"holder": "Indie Studio", "work": "Zorblax", "kind": "character", "aliases": [],
                             "description": "A purple alien", "policy": "default"}) + "\n")
    with seeded.engine.begin() as conn:
        import_rows(conn=conn, rows=read_registry_file(f))
        out = screen_prompt(conn=conn, prompt="Zorblax dancing", settings=RightsSettings(regime="opt_out", embedding=False))
        inn = screen_prompt(conn=conn, prompt="Zorblax dancing", settings=RightsSettings(regime="opt_in", embedding=False))
    assert out.decision == "allow_with_terms" and inn.decision == "block" and "opt-in" in inn.reason


def test_cli_screen_writes_one_decision_per_line_in_order(seeded, settings, monkeypatch, tmp_path):
    from kinora.cli import app

    monkeypatch.setenv("KINORA_HOME", str(settings.home))
    src, dst = tmp_path / "p.jsonl", tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"id": 1, "prompt": "p1k4chu surfing"}, {"id": "b", "prompt": "a quiet harbour"},
        {"id": 3, "prompt": "Bolt the Robot waving"}]) + "\n")
    done = CliRunner().invoke(app, ["rights", "screen", "--in", str(src), "--out", str(dst)])
    assert done.exit_code == 0, done.output
    rows = [json.loads(x) for x in dst.read_text().splitlines()]
    assert [(r["id"], r["decision"]) for r in rows] == [(1, "block"), ("b", "allow"), (3, "allow_with_terms")]
    assert rows[0]["matches"][0] == {"holder": "The Pokemon Company", "work": "Pikachu", "method": "leetspeak", "score": 1.0}
    src.write_text('{"id": 1, "prompt": "ok"}\n{"id": 2}\n')
    bad = CliRunner().invoke(app, ["rights", "screen", "--in", str(src), "--out", str(tmp_path / "x.jsonl")])
    assert bad.exit_code == 2 and "line 2" in bad.output and not (tmp_path / "x.jsonl").exists()


def test_naming_the_holder_lowers_the_bar_for_its_works_only(seeded):
    with seeded.engine.connect() as conn:
        named = screen_prompt(conn=conn, prompt="Moonbeam's space hero in a cape")
        unnamed = screen_prompt(conn=conn, prompt="a space hero in a cape")
        other = screen_prompt(conn=conn, prompt="Moonbeam's new cartoon about a fox in a bakery")
    [match] = named.matches
    assert named.decision == "block" and (match.work, match.method) == ("Captain Comet", "holder_and_description")
    assert 0.55 <= match.score < 0.75  # below the bar for a description alone
    assert unnamed.decision == "allow"  # the same paraphrase without the holder stays under the bar
    assert other.decision == "allow"  # naming the holder is not enough on its own


def test_bf16_batches_embed_like_fp32():
    """The bf16 path (used for batches on CPUs with bf16 units) must not change what the model says."""
    import numpy as np

    from kinora.trust.screening import Embedder, default_model_dir

    prompts = [json.loads(line)["prompt"] for line in
               (ROOT / "datasets" / "rights_eval" / "prompts.jsonl").read_text().splitlines()[:64:4]]
    fp32 = Embedder(default_model_dir(), precision="fp32").encode(prompts)
    bf16_model = Embedder(default_model_dir(), precision="bf16")
    bf16 = bf16_model.encode(prompts)
    assert len(prompts) >= Embedder.BF16_MIN_BATCH and bf16_model.bf16 and bf16.dtype == np.float32
    cosine = np.sum(fp32 * bf16, axis=1)
    assert cosine.min() > 0.999, cosine.min()
    assert not np.array_equal(fp32, bf16)  # it did run in another precision


def test_a_brand_is_not_its_product_category(seeded):
    """A description match on a brand needs the brand's distinctive features, not just its category."""
    with seeded.engine.connect() as conn:
        generic = screen_prompt(conn=conn, prompt="a sparkling drink in a silver cup")
        distinctive = screen_prompt(conn=conn, prompt="a red-labelled cola in the famous contoured glass bottle")
    assert generic.decision == "allow" and generic.matches == []
    assert distinctive.decision == "block"
    assert [(m.work, m.method) for m in distinctive.matches] == [("Coca-Cola", "description")]
