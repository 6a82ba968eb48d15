"""Rights screening of prompts against the registry.

The walking skeleton matches a work's name and aliases as whole words after Unicode
normalisation (NFKC, accents removed, case folded, punctuation to spaces). Issue #5 replaces
it with screening that survives spacing tricks, leetspeak, confusables and paraphrase.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from kinora.stores import rights as rights_store

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


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
    """Fold case, width and accents, and turn punctuation into single spaces."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " " + _NON_ALNUM.sub(" ", text).strip() + " "


def screen_prompt(*, conn: sa.Connection, prompt: str) -> RightsDecision:
    """Match ``prompt`` against every registered work; any blocked match blocks."""
    text = normalise(prompt)
    matches: list[RightsMatch] = []
    for work in rights_store.list_works(conn=conn):
        for term in [work.name, *work.aliases]:
            if normalise(term) in text:
                method = "name" if term == work.name else "alias"
                matches.append(
                    RightsMatch(holder=work.holder_name, work=work.name, method=method, score=1.0, policy=work.policy, terms=work.terms)
                )
                break
    blocked = [m for m in matches if m.policy == "blocked"]
    if blocked:
        names = ", ".join(f"{m.work} ({m.holder})" for m in blocked)
        return RightsDecision(decision="block", reason=f"names a work whose holder opted out: {names}", matches=matches)
    if matches:
        names = ", ".join(f"{m.work} ({m.holder})" for m in matches)
        return RightsDecision(decision="allow_with_terms", reason=f"allowed on the holder's terms: {names}", matches=matches)
    return RightsDecision(decision="allow", reason="no registered work named")
