"""Signing material for C2PA: a production chain from settings, or a local development CA.

C2PA validators accept an end-entity certificate only when it is issued by a CA (never
self-signed), is not a CA itself, has keyUsage digitalSignature and an extended key usage
they recognise; emailProtection is the one every reader accepts without extra trust
configuration (measured: documentSigning needs the OID added on both sides). The development
CA below follows those rules with three levels, root -> intermediate -> signer, like a real
issuer, so the code path that signs in development is the one that signs in production.

Files under ``cert_dir``:

* ``root.pem``: the development root (the trust anchor for local verification).
* ``chain.pem``: the signer certificate, then the intermediate.
* ``signer.key``: the signer's private key (mode 0600).
* ``intermediate.key``: the intermediate's private key (mode 0600), kept only to renew the
  one-year signer certificate; the root's key is discarded once the intermediate is issued.

Creation holds an exclusive lock file and writes each file under a temporary name before
renaming it into place, so concurrent first calls (several Serve replicas, a flow) agree on
one CA and nobody reads half a key.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kinora.settings import ProvenanceSettings

logger = logging.getLogger(__name__)

DEV_CA_LABEL = "Kinora Development CA — not for production"
ROOT_FILE, CHAIN_FILE, KEY_FILE, INTERMEDIATE_KEY_FILE = "root.pem", "chain.pem", "signer.key", "intermediate.key"
_LOCK_FILE = ".dev-ca.lock"
ROOT_VALIDITY = dt.timedelta(days=3652)  # 10 years
INTERMEDIATE_VALIDITY = dt.timedelta(days=1826)  # 5 years
LEAF_VALIDITY = dt.timedelta(days=365)  # 1 year
LEAF_RENEW_BEFORE = dt.timedelta(days=14)  # reissue the signer certificate this long before it expires
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between signer and verifier


class CertificateError(ValueError):
    """Signing material is missing, inconsistent or unsuitable for C2PA."""


@dataclass(frozen=True)
class SignerMaterial:
    """What a C2PA signer needs: the chain (end-entity first), its key, the algorithm."""

    chain_pem: bytes = field(repr=False)
    key_pem: bytes | None = field(repr=False)  # None when ``sign`` (a KMS or HSM) holds the key
    alg: str  # C2PA algorithm name: "es256", "es384", "ed25519", "ps256"
    root_pem: bytes | None = field(default=None, repr=False)  # trust anchor for local verification
    is_dev: bool = False
    sign: Callable[[bytes], bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def signer_subject(self) -> str:
        """The end-entity certificate's subject, for logs."""
        return x509.load_pem_x509_certificate(self.chain_pem).subject.rfc4514_string()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_CA_LABEL),
        ]
    )


def _ca_certificate(
    *,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer_public_key: ec.EllipticCurvePublicKey,
    path_length: int | None,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _leaf_certificate(
    *,
    public_key: ec.EllipticCurvePublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.Certificate:
    not_after = min(now + LEAF_VALIDITY, issuer_cert.not_valid_after_utc)  # never outlive the issuer
    return (
        x509.CertificateBuilder()
        .subject_name(_name("Kinora Development Signer"))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to a temporary file with ``mode`` beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, mode)  # before any byte of a key is written
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(cert_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``cert_dir`` across processes (released when the file closes)."""
    with open(cert_dir / _LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def _create_dev_ca(cert_dir: Path, now: dt.datetime) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Kinora Development Root CA")
    root = _ca_certificate(
        subject=root_name, public_key=root_key.public_key(), issuer=root_name, issuer_key=root_key,
        issuer_public_key=root_key.public_key(), path_length=1, now=now, validity=ROOT_VALIDITY,
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _ca_certificate(
        subject=_name("Kinora Development Intermediate CA"), public_key=inter_key.public_key(), issuer=root_name,
        issuer_key=root_key, issuer_public_key=root_key.public_key(), path_length=0, now=now,
        validity=INTERMEDIATE_VALIDITY,
    )
    # Files land in dependency order, chain last: a reader that finds all three files finds a
    # matching set even if an earlier attempt crashed halfway.
    _write_atomic(cert_dir / ROOT_FILE, _pem_cert(root), mode=0o644)
    _write_atomic(cert_dir / INTERMEDIATE_KEY_FILE, _pem_key(inter_key), mode=0o600)
    _issue_leaf(cert_dir, inter, inter_key, now)


def _issue_leaf(cert_dir: Path, inter: x509.Certificate, inter_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf_certificate(public_key=leaf_key.public_key(), issuer_cert=inter, issuer_key=inter_key, now=now)
    _write_atomic(cert_dir / KEY_FILE, _pem_key(leaf_key), mode=0o600)
    _write_atomic(cert_dir / CHAIN_FILE, _pem_cert(leaf) + _pem_cert(inter), mode=0o644)


def _dev_files_complete(cert_dir: Path) -> bool:
    return all((cert_dir / name).is_file() for name in (ROOT_FILE, CHAIN_FILE, KEY_FILE, INTERMEDIATE_KEY_FILE))


def ensure_dev_ca(cert_dir: Path, *, now: dt.datetime | None = None) -> SignerMaterial:
    """Return the development signer under ``cert_dir``, creating the CA on first use.

    Later calls reuse the files. The one-year signer certificate is reissued from the stored
    intermediate when it is within two weeks of expiry; when the intermediate itself expires
    the whole CA is recreated (a new root: old development signatures become untrusted).

    Args:
        now: the current time (UTC); tests pass a future date to exercise renewal.
    """
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.timezone.utc)
    with _locked(cert_dir):
        if not _dev_files_complete(cert_dir):
            logger.warning("creating a development C2PA CA in %s (%s)", cert_dir, DEV_CA_LABEL)
            _create_dev_ca(cert_dir, now)
        else:
            chain = x509.load_pem_x509_certificates((cert_dir / CHAIN_FILE).read_bytes())
            if len(chain) != 2:
                raise CertificateError(f"{cert_dir / CHAIN_FILE} holds {len(chain)} certificates, expected signer + intermediate")
            leaf, inter = chain
            if inter.not_valid_after_utc - LEAF_RENEW_BEFORE <= now:
                logger.warning(
                    "development intermediate CA in %s expires %s: recreating the CA", cert_dir, inter.not_valid_after_utc
                )
                _create_dev_ca(cert_dir, now)
            elif leaf.not_valid_after_utc - LEAF_RENEW_BEFORE <= now:
                logger.warning("development signer in %s expires %s: reissuing it", cert_dir, leaf.not_valid_after_utc)
                inter_key = serialization.load_pem_private_key((cert_dir / INTERMEDIATE_KEY_FILE).read_bytes(), None)
                _issue_leaf(cert_dir, inter, inter_key, now)
        material = SignerMaterial(
            chain_pem=(cert_dir / CHAIN_FILE).read_bytes(),
            key_pem=(cert_dir / KEY_FILE).read_bytes(),
            alg="es256",
            root_pem=(cert_dir / ROOT_FILE).read_bytes(),
            is_dev=True,
        )
    check_signer_material(material)
    return material


_KEY_TYPES = {
    "es256": (ec.EllipticCurvePrivateKey, "secp256r1"),
    "es384": (ec.EllipticCurvePrivateKey, "secp384r1"),
    "ed25519": (ed25519.Ed25519PrivateKey, None),
    "ps256": (rsa.RSAPrivateKey, None),
}


def check_signer_material(material: SignerMaterial) -> None:
    """Raise :class:`CertificateError` if the key does not match the chain or the algorithm.

    C2PA would refuse such material only at signing time, deep in a stamp; this says why early.
    """
    try:
        chain = x509.load_pem_x509_certificates(material.chain_pem)
    except ValueError as exc:
        raise CertificateError(f"signing chain is not PEM certificates: {exc}") from exc
    if len(chain) < 2:
        raise CertificateError(
            "signing chain must hold the end-entity certificate and at least its issuer "
            "(C2PA refuses a self-signed signer)"
        )
    try:
        key = serialization.load_pem_private_key(material.key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"signing key is not an unencrypted PEM private key: {exc}") from exc
    if material.alg not in _KEY_TYPES:
        raise CertificateError(f"signing alg {material.alg!r} is not one of {sorted(_KEY_TYPES)}")
    key_type, curve = _KEY_TYPES[material.alg]
    if not isinstance(key, key_type) or (curve and key.curve.name != curve):
        raise CertificateError(f"signing key ({type(key).__name__}) does not fit alg {material.alg!r}")
    leaf = chain[0]
    leaf_public = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf_public != key_public:
        raise CertificateError("signing key does not belong to the first certificate of the chain (end-entity first)")
    try:
        basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if basic.ca:
            raise CertificateError("the signing certificate is a CA (CA:TRUE); C2PA needs an end-entity certificate")
    except x509.ExtensionNotFound:
        pass
    if leaf.not_valid_after_utc <= dt.datetime.now(dt.timezone.utc):
        raise CertificateError(f"the signing certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")


def load_signer_callback(spec: str) -> Callable[[bytes], bytes]:
    """Import ``module:function`` (a KMS/HSM signing hook) and check that it is callable."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CertificateError(f"provenance.signer_callback {spec!r} is not 'module:function'")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CertificateError(f"provenance.signer_callback {spec!r} cannot be loaded: {exc}") from exc
    if not callable(func):
        raise CertificateError(f"provenance.signer_callback {spec!r} is not callable")
    return func


def load_signer_material(settings: ProvenanceSettings, cert_dir: Path) -> SignerMaterial:
    """Return the production signer named in ``settings``, or else the development CA in ``cert_dir``."""
    if settings.chain_path is not None and settings.signer_callback is not None:
        sign = load_signer_callback(settings.signer_callback)
        if not Path(settings.chain_path).is_file():
            raise CertificateError(f"provenance.chain_path names {settings.chain_path}, which does not exist")
        chain_pem = Path(settings.chain_path).read_bytes()
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError as exc:
            raise CertificateError(f"signing chain is not PEM certificates: {exc}") from exc
        if len(chain) < 2:
            raise CertificateError("signing chain must hold the end-entity certificate and at least its issuer")
        return SignerMaterial(chain_pem=chain_pem, key_pem=None, alg=settings.signing_alg, root_pem=None, is_dev=False,
                              sign=sign)
    if settings.chain_path is not None and settings.key_path is not None:
        for label, path in (("chain_path", settings.chain_path), ("key_path", settings.key_path)):
            if not Path(path).is_file():
                raise CertificateError(f"provenance.{label} names {path}, which does not exist")
        material = SignerMaterial(
            chain_pem=Path(settings.chain_path).read_bytes(),
            key_pem=Path(settings.key_path).read_bytes(),
            alg=settings.signing_alg,
            root_pem=None,  # production roots come from the C2PA trust list or trust_anchors_path
            is_dev=False,
        )
        check_signer_material(material)
        return material
    if settings.signing_alg != "es256":
        raise CertificateError(
            f"the development CA signs with es256, but provenance.signing_alg is {settings.signing_alg!r}: "
            "set it to 'es256' or give a production chain_path and key_path"
        )
    return ensure_dev_ca(cert_dir)
