"""Tests for signing material: the development CA and production material from settings."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kinora.provenance.certs import (
    DEV_CA_LABEL,
    CertificateError,
    SignerMaterial,
    ensure_dev_ca,
    load_signer_material,
)
from kinora.settings import ProvenanceSettings


def _certs(material: SignerMaterial) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    leaf, intermediate = x509.load_pem_x509_certificates(material.chain_pem)
    return leaf, intermediate, x509.load_pem_x509_certificate(material.root_pem)


def test_first_call_creates_a_three_level_ca(tmp_path):
    material = ensure_dev_ca(tmp_path / "keys")
    assert {p.name for p in (tmp_path / "keys").iterdir()} >= {"root.pem", "chain.pem", "signer.key"}
    assert material.is_dev and material.alg == "es256"
    leaf, intermediate, root = _certs(material)
    leaf.verify_directly_issued_by(intermediate)  # raises if the chain is out of order or broken
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for cert in (leaf, intermediate, root):
        assert DEV_CA_LABEL in cert.subject.rfc4514_string()
        assert "not for production" in DEV_CA_LABEL


def test_signer_certificate_fits_c2pa(tmp_path):
    leaf, _, root = _certs(ensure_dev_ca(tmp_path))
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature and not key_usage.value.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"
    leaf_days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
    root_years = (root.not_valid_after_utc - root.not_valid_before_utc).days / 365.25
    assert 364 <= leaf_days <= 366 and 9.9 <= root_years <= 10.1


def test_private_keys_are_readable_by_the_owner_only(tmp_path):
    ensure_dev_ca(tmp_path)
    for name in ("signer.key", "intermediate.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_later_calls_reuse_the_files(tmp_path):
    first = ensure_dev_ca(tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    second = ensure_dev_ca(tmp_path)
    assert second == first
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


def _ensure_in_child(cert_dir: str) -> bytes:
    return ensure_dev_ca(Path(cert_dir)).chain_pem + ensure_dev_ca(Path(cert_dir)).root_pem


def test_concurrent_first_calls_agree_on_one_ca(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_ensure_in_child, [str(tmp_path)] * 8)
    assert len(set(results)) == 1
    assert results[0] == ensure_dev_ca(tmp_path).chain_pem + ensure_dev_ca(tmp_path).root_pem


def test_signer_certificate_is_renewed_before_it_expires(tmp_path, caplog):
    first = ensure_dev_ca(tmp_path)
    old_leaf, old_intermediate, root = _certs(first)
    later = old_leaf.not_valid_after_utc - dt.timedelta(days=3)
    renewed = ensure_dev_ca(tmp_path, now=later)
    new_leaf, new_intermediate, new_root = _certs(renewed)
    assert "reissuing" in caplog.text
    assert new_root == root and new_intermediate == old_intermediate  # same anchor: old files stay trusted
    assert new_leaf.serial_number != old_leaf.serial_number and new_leaf.not_valid_after_utc > old_leaf.not_valid_after_utc
    assert renewed.key_pem != first.key_pem
    new_leaf.verify_directly_issued_by(old_intermediate)


def test_settings_without_a_chain_give_the_dev_ca(tmp_path):
    material = load_signer_material(ProvenanceSettings(), tmp_path)
    assert material.is_dev and material == ensure_dev_ca(tmp_path)


def test_production_chain_from_settings(tmp_path):
    dev = ensure_dev_ca(tmp_path / "issuer")  # any CA-issued chain stands in for a real one
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(dev.chain_pem)
    key.write_bytes(dev.key_pem)
    material = load_signer_material(ProvenanceSettings(chain_path=chain, key_path=key), tmp_path / "unused")
    assert not material.is_dev and material.root_pem is None
    assert (material.chain_pem, material.key_pem, material.alg) == (dev.chain_pem, dev.key_pem, "es256")
    assert not (tmp_path / "unused").exists()  # no dev CA is made when a production chain is set


def test_mismatched_production_material_is_refused(tmp_path):
    one, other = ensure_dev_ca(tmp_path / "one"), ensure_dev_ca(tmp_path / "other")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(one.chain_pem)
    key.write_bytes(other.key_pem)
    with pytest.raises(CertificateError, match="does not belong"):
        load_signer_material(ProvenanceSettings(chain_path=chain, key_path=key), tmp_path)
    key.write_bytes(one.key_pem)
    with pytest.raises(CertificateError, match="does not fit alg"):
        load_signer_material(ProvenanceSettings(chain_path=chain, key_path=key, signing_alg="ed25519"), tmp_path)
    chain.write_bytes(one.chain_pem.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match="self-signed"):
        load_signer_material(ProvenanceSettings(chain_path=chain, key_path=key), tmp_path)
    with pytest.raises(CertificateError, match="does not exist"):
        load_signer_material(ProvenanceSettings(chain_path=tmp_path / "nope.pem", key_path=key), tmp_path)


def test_dev_ca_refuses_another_algorithm(tmp_path):
    with pytest.raises(CertificateError, match="es256"):
        load_signer_material(ProvenanceSettings(signing_alg="ps256"), tmp_path)


KMS_MODULE = '''
"""A stand-in for a KMS or HSM: it holds the key and signs what it is given (ES256, DER)."""
import os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CALLS = []

def sign(data: bytes) -> bytes:
    key = serialization.load_pem_private_key(open(os.environ["FAKE_KMS_KEY"], "rb").read(), password=None)
    CALLS.append(len(data))
    return key.sign(data, ec.ECDSA(hashes.SHA256()))
'''


def test_a_kms_callback_signs_without_the_key_in_kinora(tmp_path, monkeypatch):
    import importlib

    import numpy as np

    from kinora.provenance.c2pa_manifest import KinoraAssertion, read_manifest, sign_mp4
    from kinora.settings import MediaSettings
    from models.media import encode_mp4

    dev = ensure_dev_ca(tmp_path / "issuer")
    chain, key = tmp_path / "chain.pem", tmp_path / "kms-only" / "key.pem"
    key.parent.mkdir()
    chain.write_bytes(dev.chain_pem)
    key.write_bytes(dev.key_pem)
    (tmp_path / "fake_kms.py").write_text(KMS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FAKE_KMS_KEY", str(key))
    material = load_signer_material(ProvenanceSettings(chain_path=chain, signer_callback="fake_kms:sign"), tmp_path / "x")
    assert material.key_pem is None and material.sign is not None and not material.is_dev

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    encode_mp4(np.zeros((24, 64, 64, 3), np.uint8), None, fps=24, sample_rate=48_000, out_path=src, settings=MediaSettings())
    assertion = KinoraAssertion(model_family="ltx2", model_version="t", seed=1, request_id="req_kms",
                                consent_hash="0" * 64, rights_hash="0" * 64)
    sign_mp4(src, dst, assertion=assertion, title="kms", material=material, claim_generator="Kinora")
    assert importlib.import_module("fake_kms").CALLS  # the callback did the signing
    report = read_manifest(dst, trust_anchors_pem=dev.root_pem)
    assert report.validation_state == "Trusted", report.errors


def test_signer_settings_are_checked():
    with pytest.raises(ValueError, match="give one"):
        ProvenanceSettings(chain_path="c.pem", key_path="k.pem", signer_callback="m:f")
    with pytest.raises(ValueError, match="chain_path goes with"):
        ProvenanceSettings(signer_callback="m:f")
    with pytest.raises(CertificateError, match="not 'module:function'"):
        load_signer_material(ProvenanceSettings(chain_path=__file__, signer_callback="nomodule"), None)
