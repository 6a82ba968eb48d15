"""Sign MP4s with a C2PA manifest and read manifests back (c2pa-python, the CAI's Rust SDK).

What a Kinora manifest says (C2PA 2.x, claim v2):

* ``c2pa.actions.v2``: ``c2pa.created`` with digitalSourceType ``trainedAlgorithmicMedia``
  (IPTC), whose softwareAgent names the model family and version. A remix adds ``c2pa.edited``
  pointing at the parent video, which is attached as an ingredient with relationship
  ``inputTo`` (an input to the generative model). ``parentOf`` is not used: C2PA forbids a
  parent ingredient in a manifest whose first action is ``c2pa.created``, and the SDK refuses it.
* ``org.kinora.generation``: :class:`KinoraAssertion`: model, seed, request id and the
  SHA-256 digests of the consent grants and rights decision relied on. Hashes only: no names,
  handles or prompts, because a manifest travels with the file to everyone who gets it.
* ``c2pa.soft-binding``: the invisible watermark's content id (:mod:`kinora.provenance.watermark`,
  algorithm :data:`SOFT_BINDING_ALG`), so a file whose manifest was stripped can be matched back
  by its pixels, and a manifest moved onto other pixels shows a mismatch.
* ``c2pa.hash.bmff.v3``: added by the SDK; any change to the media data breaks it.

References: C2PA Technical Specification 2.x (actions, ingredients, BMFF hashing);
IPTC Digital Source Type vocabulary; c2pa-python 0.38 ``Builder``/``Reader``/``Signer``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinora.provenance.certs import SignerMaterial

logger = logging.getLogger(__name__)

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
KINORA_LABEL = "org.kinora.generation"
PARENT_INGREDIENT_ID = "kinora-remix-parent"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
SOFT_BINDING_ALG = "org.kinora.watermark.tiled-spread-spectrum.v1"
_MIME_BY_SUFFIX = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}


def kinora_version() -> str:
    """Return the installed Kinora version (written into every claim)."""
    try:
        return version("kinora")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


class KinoraAssertion(BaseModel):
    """The ``org.kinora.generation`` assertion: how a video was made, in hashes and ids only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: ClassVar[str] = KINORA_LABEL

    model_family: str = Field(min_length=1, max_length=64, description="Generation backend, e.g. 'ltx2'.")
    model_version: str = Field(min_length=1, max_length=200, description="Checkpoint or preset version of the model.")
    seed: int = Field(ge=0, lt=2**64, description="Seed of the generator that produced the clip.")
    request_id: str = Field(min_length=1, max_length=128, description="Kinora request id (opaque, not personal).")
    consent_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the consent grants relied on; never names."
    )
    rights_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the rights decision relied on.")


class SignedInfo(BaseModel):
    """What :func:`sign_mp4` wrote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="The signed MP4.")
    sha256: str = Field(description="SHA-256 (hex) of the signed file.")
    size_bytes: int = Field(ge=0, description="Size of the signed file.")
    manifest_bytes: int = Field(ge=0, description="Size of the embedded C2PA manifest store.")
    manifest_sha256: str = Field(description="SHA-256 (hex) of the embedded C2PA manifest store.")
    alg: str = Field(description="Signature algorithm.")
    claim_generator: str = Field(description="Claim generator written, 'name/version'.")
    remix_of: str | None = Field(None, description="File name of the parent ingredient, for a remix.")


class ManifestReport(BaseModel):
    """What a file's C2PA manifest says and whether it validates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    present: bool = Field(description="Whether the file carries a readable C2PA manifest.")
    validation_state: str | None = Field(
        None, description="'Trusted' (chain reaches a trust anchor), 'Valid' (intact, signer not trusted) or 'Invalid'."
    )
    claim_generator: str | None = Field(None, description="Claim generator of the active manifest, 'name/version'.")
    digital_source_type: str | None = Field(None, description="IPTC digital source type of the c2pa.created action.")
    kinora: KinoraAssertion | None = Field(None, description="The Kinora generation assertion, when present and well formed.")
    title: str | None = Field(None, description="Title of the active manifest.")
    actions: list[str] = Field(default_factory=list, description="Actions of the active manifest, in order.")
    ingredients: list[str] = Field(default_factory=list, description="Ingredients as 'relationship:title'.")
    signer: str | None = Field(None, description="Common name of the signing certificate.")
    issuer: str | None = Field(None, description="Issuer organisation named in the signature info.")
    soft_binding: str | None = Field(None, description="Watermark content id (12 hex digits) the manifest binds to.")
    errors: list[str] = Field(default_factory=list, description="Validation failures as 'code: explanation'.")


def build_manifest(
    *, assertion: KinoraAssertion, title: str, claim_generator: str, parent_title: str | None = None,
    content_id: int | None = None,
) -> dict[str, Any]:
    """Return the manifest definition that :func:`sign_mp4` hands to the C2PA builder."""
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": {"name": f"Kinora {assertion.model_family}", "version": assertion.model_version},
        }
    ]
    if parent_title is not None:
        actions.append(
            {
                "action": "c2pa.edited",
                "description": f"remix of {parent_title}",
                "parameters": {"ingredientIds": [PARENT_INGREDIENT_ID]},
            }
        )
    assertions = [
        {"label": "c2pa.actions", "data": {"actions": actions}},
        {"label": KINORA_LABEL, "data": assertion.model_dump(mode="json")},
    ]
    if content_id is not None:
        value = base64.b64encode(content_id.to_bytes(6, "big")).decode("ascii")
        assertions.append({"label": SOFT_BINDING_LABEL,
                           "data": {"alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": value}]}})
    return {
        "claim_generator_info": [{"name": claim_generator, "version": kinora_version()}],
        "title": title,
        "format": "video/mp4",
        "assertions": assertions,
    }


def sign_mp4(
    src: Path,
    dst: Path,
    *,
    assertion: KinoraAssertion,
    title: str,
    material: SignerMaterial,
    claim_generator: str,
    parent: Path | None = None,
    content_id: int | None = None,
) -> SignedInfo:
    """Embed a signed C2PA manifest in a copy of ``src`` written atomically to ``dst``.

    Args:
        parent: for a remix, the parent video; attached as an ingredient (with its own
            manifest, if it has one) and referenced by a ``c2pa.edited`` action.
    """
    import c2pa

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file to sign")
    if not title.strip():
        raise ValueError("title must not be empty")
    if parent is not None and not Path(parent).is_file():
        raise FileNotFoundError(f"{parent}: no such parent video")

    manifest = build_manifest(
        assertion=assertion, title=title, claim_generator=claim_generator,
        parent_title=Path(parent).name if parent is not None else None, content_id=content_id,
    )
    if material.sign is not None:  # a KMS or HSM holds the key: it signs the bytes C2PA hands it
        alg = getattr(c2pa.C2paSigningAlg, material.alg.upper())
        signer = c2pa.Signer.from_callback(material.sign, alg, material.chain_pem.decode("ascii"), None)
    else:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(material.alg, material.chain_pem, material.key_pem, None))
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with c2pa.Builder(manifest) as builder:
            if parent is not None:
                ingredient = {"title": Path(parent).name, "relationship": "inputTo", "label": PARENT_INGREDIENT_ID}
                with open(parent, "rb") as parent_fh:
                    builder.add_ingredient(ingredient, _MIME_BY_SUFFIX.get(Path(parent).suffix.lower(), "video/mp4"), parent_fh)
            with open(src, "rb") as src_fh, open(tmp, "w+b") as dst_fh:  # the SDK reads back what it writes
                manifest_bytes = builder.sign(signer, "video/mp4", src_fh, dst_fh)
        data = tmp.read_bytes()
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        signer.close()
    return SignedInfo(
        path=dst,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        manifest_bytes=len(manifest_bytes or b""),
        manifest_sha256=hashlib.sha256(manifest_bytes or b"").hexdigest(),
        alg=material.alg,
        claim_generator=f"{claim_generator}/{kinora_version()}",
        remix_of=Path(parent).name if parent is not None else None,
    )


def _trust_context(trust_anchors_pem: bytes):
    import c2pa

    settings = c2pa.Settings.from_dict(
        {"verify": {"verify_trust": True}, "trust": {"user_anchors": trust_anchors_pem.decode("ascii")}}
    )
    return c2pa.Context(settings)


def _claim_generator(manifest: dict) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos and infos[0].get("name"):
        info = infos[0]
        return f"{info['name']}/{info['version']}" if info.get("version") else str(info["name"])
    return manifest.get("claim_generator")  # claim v1 manifests carry a plain string


def _failures(store: dict) -> list[str]:
    results = store.get("validation_results")
    if results is None:  # older stores: a flat status list
        return [f"{s.get('code')}: {s.get('explanation', '')}" for s in store.get("validation_status") or []]
    errors = [f"{s.get('code')}: {s.get('explanation', '')}" for s in (results.get("activeManifest") or {}).get("failure") or []]
    for delta in results.get("ingredientDeltas") or []:
        for s in (delta.get("validationDeltas") or {}).get("failure") or []:
            errors.append(f"ingredient {delta.get('ingredientAssertionURI', '?')}: {s.get('code')}: {s.get('explanation', '')}")
    return errors


def report_from_store(store: dict) -> ManifestReport:
    """Summarise a manifest store (the SDK's JSON, parsed) as a :class:`ManifestReport`."""
    errors = _failures(store)
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "")
    if manifest is None:
        state = store.get("validation_state")
        return ManifestReport(present=True, validation_state=state, errors=errors + ["no active manifest"])
    actions: list[dict] = []
    kinora = None
    soft_binding = None
    for item in manifest.get("assertions") or []:
        label = item.get("label", "")
        if label == SOFT_BINDING_LABEL and (item.get("data") or {}).get("alg") == SOFT_BINDING_ALG:
            try:
                raw = base64.b64decode(item["data"]["blocks"][0]["value"])
                soft_binding = raw.hex() if len(raw) == 6 else None
            except (KeyError, IndexError, TypeError, ValueError):
                errors.append(f"{SOFT_BINDING_LABEL}: malformed")
        if label in {"c2pa.actions", "c2pa.actions.v2"}:
            actions.extend((item.get("data") or {}).get("actions") or [])
        elif label == KINORA_LABEL:
            try:
                kinora = KinoraAssertion.model_validate(item.get("data"))
            except ValidationError as exc:
                errors.append(f"{KINORA_LABEL}: malformed ({exc.error_count()} problems, first: {exc.errors()[0]['msg']})")
    created = next((a for a in actions if a.get("action") == "c2pa.created"), None)
    signature = manifest.get("signature_info") or {}
    return ManifestReport(
        present=True,
        validation_state=store.get("validation_state"),
        claim_generator=_claim_generator(manifest),
        digital_source_type=(created or {}).get("digitalSourceType"),
        kinora=kinora,
        title=manifest.get("title"),
        actions=[a.get("action", "?") for a in actions],
        ingredients=[f"{i.get('relationship', '?')}:{i.get('title', '?')}" for i in manifest.get("ingredients") or []],
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        soft_binding=soft_binding,
        errors=errors,
    )


def read_manifest(path: Path, *, trust_anchors_pem: bytes | None = None) -> ManifestReport:
    """Read and validate the C2PA manifest of ``path``; a file without one gives ``present=False``.

    Args:
        trust_anchors_pem: PEM roots to trust in addition to none; with them a chain that
            reaches one of the roots reads as ``Trusted``, otherwise at best ``Valid``.
    """
    import c2pa

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    mime = _MIME_BY_SUFFIX.get(path.suffix.lower())
    try:
        context = _trust_context(trust_anchors_pem) if trust_anchors_pem else None
        with open(path, "rb") as fh:
            reader = c2pa.Reader.try_create(mime, fh, None, context) if context else c2pa.Reader.try_create(mime, fh)
            if reader is None:
                return ManifestReport(present=False)
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        # Not an asset the SDK can parse, or a manifest too damaged to read: report, don't raise,
        # so a verify endpoint can answer for any upload.
        logger.info("C2PA read of %s failed: %s", path, exc)
        return ManifestReport(present=False, errors=[f"unreadable: {exc}"])
    return report_from_store(store)
