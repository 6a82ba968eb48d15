"""Rights decisions: which registry works a prompt refers to (:mod:`kinora.trust.screening`),
and what each work's policy says.

- ``blocked`` works block.
- ``allowed`` works allow on their terms (attribution, revenue-share tag), unless the prompt breaks
  one of the terms' ``disallowed_contexts`` ("no violence"; screened like a cameo restriction).
- ``default`` works follow the platform regime (``KINORA_RIGHTS__REGIME``): ``opt_out`` allows
  them, ``opt_in`` blocks them (protected until their holder opts in).
- public figures are blocked unless the person has a verified cameo (``terms.cameo``) whose
  consent admits the requester.

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
                embedder = load_embedder(str(settings.embedding_model_dir or default_model_dir()), settings.embedding_threads)
            works = [Work(id=r.id, holder=r.holder_name, name=r.name, kind=r.kind, aliases=tuple(r.aliases or ()),
                          description=r.description) for r in rows]
            config = ScreenerConfig(semantic_threshold=settings.semantic_threshold,
                                    context_threshold=settings.context_threshold, embed=settings.embedding)
            screener = Screener(works, config, embedder)
            _SCREENERS.clear()
            _SCREENERS[version] = screener
    return screener, by_id


def screen_prompts(*, conn: sa.Connection, prompts: list[str], settings: RightsSettings | None = None,
                   requester_id: str | None = None, max_cameos: int = 2) -> list[RightsDecision]:
    """Decide each prompt (batched: one embedding pass for all)."""
    settings = settings or RightsSettings()
    screener, rows = screener_for(conn=conn, settings=settings)
    out = []
    for prompt, matches in zip(prompts, screener.screen_many(prompts)):
        out.append(_decide(conn, prompt, matches, rows, settings, requester_id, max_cameos))
    return out


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
        policy, why = _effective_policy(row.policy, settings)
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


def _effective_policy(policy: str, settings: RightsSettings) -> tuple[str, str | None]:
    if policy == "default":
        if settings.regime == "opt_in":
            return "blocked", "protected under the opt-in regime until its holder opts in"
        return "allowed", None
    return policy, None


def _cameo_permits(conn, requester_id: str, cameo: str, prompt: str, max_cameos: int) -> bool:
    from kinora.trust.consent import check_consent

    return check_consent(conn=conn, requester_id=requester_id, cameo_handles=[cameo], max_cameos=max(1, max_cameos),
                         prompt=prompt).allowed
