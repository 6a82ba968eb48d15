"""Rights decisions: which registry works a prompt refers to (:mod:`kinora.trust.screening`),
and what each work's policy says.

- ``blocked`` works block.
- ``allowed`` works allow on their terms (attribution, revenue-share tag), unless the prompt breaks
  one of the terms' ``disallowed_contexts`` ("no violence"; screened like a cameo restriction).
- ``default`` works follow their holder's default (``blocked`` or ``allowed``) when the holder set
  one, else the platform regime (``KINORA_RIGHTS__REGIME``): ``opt_out`` allows them, ``opt_in``
  blocks them (protected until their holder opts in).
- public figures are blocked unless the person has a verified cameo (``terms.cameo``) whose
  consent admits the requester.

- a remix carries its sources' rights: the new prompt and every prompt up its remix chain are
  screened, and the strictest outcome wins (:func:`with_sources`).

The screener is built once per registry version (works count and newest update) and reused.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from kinora.settings import RightsSettings
from kinora.stores import rights as rights_store
from kinora.trust.restrictions import screen as screen_contexts
from kinora.trust.screening import Screener, ScreenerConfig, Work, default_model_dir, fold, load_embedder


class RightsMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: str
    work: str
    method: str
    score: float
    policy: str
    terms: dict | None = None


class RightsDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["allow", "block", "allow_with_terms"]
    reason: str
    matches: list[RightsMatch] = []

    @property
    def allowed(self) -> bool:
        return self.decision != "block"

    def digest(self) -> str:
        payload = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()


def normalise(text: str) -> str:
    """The prompt as the screener reads it: folded, one space between words."""
    return " " + fold(text).text + " "


_LOCK = threading.Lock()
_SCREENERS: dict[tuple, Screener] = {}


def screener_for(*, conn: sa.Connection, settings: RightsSettings | None = None) -> tuple[Screener, dict[str, sa.Row]]:
    """The screener over the registry as it is now (rebuilt only when the registry changed)."""
    settings = settings or RightsSettings()
    rows = rights_store.list_works(conn=conn)
    version = (len(rows), max((str(r.updated_at) for r in rows), default=""), settings.model_dump_json())
    by_id = {r.id: r for r in rows}
    with _LOCK:
        screener = _SCREENERS.get(version)
        if screener is None:
            embedder = None
            if settings.embedding:
                embedder = load_embedder(str(settings.embedding_model_dir or default_model_dir()), settings.embedding_threads,
                                         settings.embedding_precision)
            works = [Work(id=r.id, holder=r.holder_name, name=r.name, kind=r.kind, aliases=tuple(r.aliases or ()),
                          description=r.description) for r in rows]
            config = ScreenerConfig(semantic_threshold=settings.semantic_threshold,
                                    context_threshold=settings.context_threshold, holder_threshold=settings.holder_threshold,
                                    embed=settings.embedding)
            screener = Screener(works, config, embedder)
            _SCREENERS.clear()
            _SCREENERS[version] = screener
    return screener, by_id


def registry_digest(*, conn: sa.Connection, settings: RightsSettings | None = None) -> str:
    """A fingerprint of everything a decision depends on besides the prompt: every work with its
    holder's default, and the screening settings. The re-screen runs when it changes."""
    settings = settings or RightsSettings()
    works = [[r.id, r.holder_name, r.holder_default, r.name, r.kind, list(r.aliases or []), r.description, r.policy,
              r.terms] for r in rights_store.list_works(conn=conn)]
    payload = json.dumps({"works": works, "settings": settings.model_dump(mode="json")}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def screen_items(*, conn: sa.Connection, items: list[tuple[str, str | None]], settings: RightsSettings | None = None,
                 max_cameos: int = 2) -> list[RightsDecision]:
    """Decide each (prompt, requester) pair; each distinct prompt is matched once (one embedding pass)."""
    settings = settings or RightsSettings()
    screener, rows = screener_for(conn=conn, settings=settings)
    unique = list(dict.fromkeys(prompt for prompt, _ in items))
    found = dict(zip(unique, screener.screen_many(unique)))
    return [_decide(conn, prompt, found[prompt], rows, settings, requester, max_cameos) for prompt, requester in items]


def screen_prompts(*, conn: sa.Connection, prompts: list[str], settings: RightsSettings | None = None,
                   requester_id: str | None = None, max_cameos: int = 2) -> list[RightsDecision]:
    """Decide each prompt for one requester (batched: one embedding pass for all)."""
    return screen_items(conn=conn, items=[(p, requester_id) for p in prompts], settings=settings, max_cameos=max_cameos)


def with_sources(own: RightsDecision, sources: list[tuple[str, RightsDecision]], prompt: str = "") -> RightsDecision:
    """A remix's decision: its own prompt's, carrying each source's (video id, decision), parent first.

    The strictest wins: a block anywhere blocks (the remix's own reason first, then the nearest
    source's). A work allowed upstream stays on its terms, and the remix's ``prompt`` must respect
    them too: "Optimus Prime waving" remixed as "now make it a brutal fight" breaks "no violence".
    """
    if not sources:
        return own
    matches = list(own.matches)
    for _, d in sources:
        matches += [m for m in d.matches if m not in matches]
    if own.decision == "block":
        return RightsDecision(decision="block", reason=own.reason, matches=matches)
    for video_id, d in sources:
        if d.decision == "block":
            return RightsDecision(decision="block", reason=f"remix source {video_id}: {d.reason}", matches=matches)
        for m in d.matches:
            hit = screen_contexts(prompt, list((m.terms or {}).get("disallowed_contexts") or [])) if prompt else None
            if hit is not None:
                return RightsDecision(
                    decision="block", matches=matches,
                    reason=(f"remix source {video_id} shows {m.work}, which is allowed, but not here: its terms say "
                            f"{hit.restriction!r} and the remix prompt mentions {hit.matched!r}"))
    if matches:
        names = ", ".join(dict.fromkeys(f"{m.work} ({m.holder})" for m in matches))
        return RightsDecision(decision="allow_with_terms", reason=f"allowed on the holder's terms: {names}", matches=matches)
    return own


def screen_prompt(*, conn: sa.Connection, prompt: str, settings: RightsSettings | None = None,
                  requester_id: str | None = None, max_cameos: int = 2) -> RightsDecision:
    return screen_prompts(conn=conn, prompts=[prompt], settings=settings, requester_id=requester_id,
                          max_cameos=max_cameos)[0]


def _decide(conn, prompt, matches, rows, settings: RightsSettings, requester_id, max_cameos) -> RightsDecision:
    found: list[RightsMatch] = []
    blocks: list[str] = []
    for m in sorted(matches, key=lambda m: (-m.score, m.work.name)):
        row = rows[m.work.id]
        terms = row.terms or {}
        policy, why = _effective_policy(row, settings)
        if row.kind == "public_figure":
            cameo = terms.get("cameo")
            if cameo and requester_id and _cameo_permits(conn, requester_id, cameo, prompt, max_cameos):
                policy, why = "allowed", f"public figure {row.name} permits the requester through the verified cameo @{cameo}"
            else:
                policy = "blocked"
                why = (f"public figure {row.name}: only with a verified cameo of theirs that permits the requester"
                       + ("" if cameo else " (none registered)"))
        if policy == "allowed":
            hit = screen_contexts(prompt, list(terms.get("disallowed_contexts") or []))
            if hit is not None:
                policy, why = "blocked", f"{row.name} is allowed, but not here: its terms say {hit.restriction!r} and the prompt mentions {hit.matched!r}"
        found.append(RightsMatch(holder=m.work.holder, work=m.work.name, method=m.method, score=m.score,
                                 policy=policy, terms=row.terms))
        if policy == "blocked":
            blocks.append(why or f"names a work whose holder opted out: {row.name} ({m.work.holder}), by {m.method}, score {m.score:.2f}")
    if blocks:
        return RightsDecision(decision="block", reason="; ".join(blocks), matches=found)
    if found:
        names = ", ".join(f"{m.work} ({m.holder})" for m in found)
        return RightsDecision(decision="allow_with_terms", reason=f"allowed on the holder's terms: {names}", matches=found)
    return RightsDecision(decision="allow", reason="no registered work referred to")


def _effective_policy(row: sa.Row, settings: RightsSettings) -> tuple[str, str | None]:
    """The work's own policy; for ``default``, its holder's default, else the platform regime."""
    if row.policy != "default":
        return row.policy, None
    holder_default = getattr(row, "holder_default", None) or "default"
    if holder_default == "blocked":
        return "blocked", f"names a work whose holder blocks its works by default: {row.name} ({row.holder_name})"
    if holder_default == "allowed":
        return "allowed", None
    if settings.regime == "opt_in":
        return "blocked", f"{row.name} ({row.holder_name}) is protected under the opt-in regime until its holder opts in"
    return "allowed", None


def _cameo_permits(conn, requester_id: str, cameo: str, prompt: str, max_cameos: int) -> bool:
    from kinora.trust.consent import check_consent

    return check_consent(conn=conn, requester_id=requester_id, cameo_handles=[cameo], max_cameos=max(1, max_cameos),
                         prompt=prompt).allowed
