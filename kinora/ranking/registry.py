"""Ranker versions on disk, and which one is in production.

    <ranking_dir>/versions/<version>/  model.pt, text.npz, state.npz, catalog.npz, card.json
    <ranking_dir>/registry.json        {"production": version, "history": [...]}

A version is written under a temporary name and renamed into place, so a reader (the serving
ranker) never sees half of one. ``registry.json`` is replaced atomically; its history is the
stack :func:`rollback` pops. The card holds the lineage: data fingerprint, code version,
parameters and metrics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kinora.ranking.features import Catalog, FeatureState, TextFeatures
from kinora.ranking.model import MultiTaskRanker


class RegistryError(ValueError):
    """A version is unknown or the registry cannot do what was asked."""


def code_version() -> str:
    """Hash of the ranking code (and the git commit when there is one): what built a version."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    commit = ""
    head = Path(__file__).resolve().parents[2] / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            commit = (head.parent / ref[5:]).read_text().strip()[:12]
        else:
            commit = ref[:12]
    except OSError:
        pass
    return f"src-{h.hexdigest()[:12]}" + (f"+git-{commit}" if commit else "")


def new_version() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("rk-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass
class RankerBundle:
    """Everything the ranker needs to score: the model, the text projection and the snapshot."""

    version: str
    model: MultiTaskRanker
    text: TextFeatures
    state: FeatureState
    catalog: Catalog
    card: dict


def save(path: Path, *, model: MultiTaskRanker, text: TextFeatures, state: FeatureState, catalog: Catalog,
         card: dict) -> Path:
    """Write a version folder atomically; return its path."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "n_features": int(model.mean.shape[0]),
                "hidden": card["params"]["hidden"]}, tmp / "model.pt")
    np.savez(tmp / "text.npz", mean=text.mean, components=text.components)
    np.savez(tmp / "state.npz", **state.arrays(), as_of_us=np.int64(state.as_of_us))
    np.savez(tmp / "catalog.npz", users=catalog.users, videos=catalog.videos, creators=catalog.creators,
             video_creator=catalog.video_creator, video_published_us=catalog.video_published_us,
             video_duration_s=catalog.video_duration_s, video_embedding=catalog.video_embedding.astype(np.float16))
    (tmp / "card.json").write_text(json.dumps(card, indent=2, default=str))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def load(path: Path) -> RankerBundle:
    path = Path(path)
    if not (path / "card.json").is_file():
        raise RegistryError(f"{path}: not a ranker version (no card.json)")
    card = json.loads((path / "card.json").read_text())
    blob = torch.load(path / "model.pt", weights_only=True)
    model = MultiTaskRanker(blob["n_features"], blob["hidden"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    t = np.load(path / "text.npz")
    text = TextFeatures(t["mean"], t["components"])
    s = dict(np.load(path / "state.npz"))
    as_of = int(s.pop("as_of_us"))
    state = FeatureState(**s, as_of_us=as_of)
    c = np.load(path / "catalog.npz", allow_pickle=False)
    catalog = Catalog(users=c["users"], videos=c["videos"], creators=c["creators"], video_creator=c["video_creator"],
                      video_published_us=c["video_published_us"], video_duration_s=c["video_duration_s"],
                      video_embedding=c["video_embedding"].astype(np.float32))
    return RankerBundle(card["version"], model, text, state, catalog, card)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions = self.root / "versions"
        self.file = self.root / "registry.json"

    def _read(self) -> dict:
        if not self.file.is_file():
            return {"production": None, "history": []}
        return json.loads(self.file.read_text())

    def _write(self, doc: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, self.file)

    def path(self, version: str) -> Path:
        p = self.versions / version
        if not (p / "card.json").is_file():
            known = ", ".join(self.list()) or "none"
            raise RegistryError(f"unknown ranker version {version!r} (known: {known})")
        return p

    def resolve(self, ref: str | Path) -> Path:
        """A version name, 'production', or a folder path."""
        if str(ref) == "production":
            prod = self.production()
            if prod is None:
                raise RegistryError("no ranker in production yet")
            return self.path(prod)
        p = Path(ref)
        if (p / "card.json").is_file():
            return p
        return self.path(str(ref))

    def list(self) -> list[str]:
        if not self.versions.is_dir():
            return []
        return sorted(p.name for p in self.versions.iterdir() if (p / "card.json").is_file())

    def card(self, version: str) -> dict:
        return json.loads((self.path(version) / "card.json").read_text())

    def production(self) -> str | None:
        return self._read()["production"]

    def history(self) -> list[dict]:
        """Every promotion and rollback, oldest first: ``{version, previous, reason, at}``."""
        return list(self._read()["history"])

    def promote(self, version: str, reason: str) -> dict:
        self.path(version)
        doc = self._read()
        if doc["production"] == version:
            raise RegistryError(f"{version} is already in production")
        doc["history"].append({"version": version, "previous": doc["production"], "reason": reason,
                               "at": dt.datetime.now(dt.timezone.utc).isoformat()})
        doc["production"] = version
        self._write(doc)
        return doc

    def rollback(self) -> dict:
        """Put the version that was in production before the current one back."""
        doc = self._read()
        if not doc["history"] or doc["history"][-1].get("previous") is None:
            raise RegistryError("nothing to roll back to: no earlier production version")
        last = doc["history"][-1]
        doc["production"] = last["previous"]
        doc["history"].append({"version": last["previous"], "previous": last["version"], "reason": "rollback",
                               "at": dt.datetime.now(dt.timezone.utc).isoformat(), "rolled_back": last["version"]})
        # a rollback's own 'previous' is the bad version; skip past it if rolled back again
        doc["history"][-1]["previous"] = _before(doc["history"][:-1], last["previous"])
        self._write(doc)
        return doc


def _before(history: list[dict], version: str) -> str | None:
    """What was in production before ``version`` was last promoted (for repeated rollbacks)."""
    for entry in reversed(history):
        if entry["version"] == version and entry.get("reason") != "rollback":
            return entry.get("previous")
    return None
