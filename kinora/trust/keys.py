"""Local key material for consent: the ledger's Ed25519 signing key, the embedded verifier's
Ed25519 key, and the AES-256-GCM key that encrypts cameo reference media at rest.

Each key is made on first use in ``settings.consent_key_dir`` (mode 0600, written atomically
under a file lock so concurrent first starts agree on one key). A deployment that keeps keys in
a secrets manager mounts them into that folder; the file names are the interface.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LEDGER_KEY_FILE = "ledger_ed25519.pem"
VERIFIER_KEY_FILE = "verifier_ed25519.pem"
MEDIA_KEY_FILE = "cameo_media.key"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".consent-keys.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load_or_create_ed25519(path: Path) -> Ed25519PrivateKey:
    """Read the PEM private key at ``path``, creating it first if the file does not exist."""
    with _locked(path.parent):
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            _write_new(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_or_create_aes_key(path: Path) -> bytes:
    """Read the 32-byte AES key at ``path`` (base64), creating it first if absent."""
    with _locked(path.parent):
        if not path.exists():
            _write_new(path, base64.b64encode(secrets.token_bytes(32)))
        key = base64.b64decode(path.read_bytes().strip())
    if len(key) != 32:
        raise ValueError(f"{path} must hold a base64 32-byte key, found {len(key)} bytes")
    return key


def public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: the form settings list trusted keys in."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def key_id(public: str) -> str:
    """A short, stable name for a public key (its first 16 base64 characters)."""
    return public[:16]


def verify_ed25519(public: str, signature_b64: str, message: bytes) -> bool:
    """True when ``signature_b64`` is ``public``'s Ed25519 signature of ``message``; False on any defect."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(signature_b64, validate=True), message)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def sign_b64(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


class MediaCipher:
    """AES-256-GCM for cameo reference media at rest; the blob is nonce (12 bytes) + ciphertext + tag.

    The cameo id is bound in as associated data, so a blob moved to another cameo fails to decrypt.
    """

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def encrypt(self, data: bytes, *, cameo_id: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, data, cameo_id.encode())

    def decrypt(self, blob: bytes, *, cameo_id: str) -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], cameo_id.encode())
