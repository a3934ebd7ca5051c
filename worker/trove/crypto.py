"""Application-level encryption of platform tokens: AES-256-GCM, versioned, with the key id inside.

Ciphertext format: `v1:<key id>:<base64url(nonce || ciphertext+tag)>`. The associated data binds each
ciphertext to its account and column, so a token copied to another row does not decrypt. Keys come from
$TROVE_TOKEN_KEYS (`kid:base64key,kid2:base64key`); the one named by $TROVE_TOKEN_KEY_ID (default: the
first) encrypts, all of them decrypt, so keys rotate: add a new key, make it current, `trove keys rotate`.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trove.config import state_dir

VERSION = "v1"
NONCE_BYTES = 12


class TokenCryptoError(RuntimeError):
    """A token could not be encrypted or decrypted. Messages never contain token material."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key() -> str:
    """A new random 256-bit key, base64url, for $TROVE_TOKEN_KEYS."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    current: str

    @classmethod
    def parse(cls, spec: str, current: str | None = None) -> KeyRing:
        keys: dict[str, bytes] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, material = entry.partition(":")
            if not sep or not kid or ":" in material:
                raise TokenCryptoError("each token key must be written as <key id>:<base64url key>")
            try:
                key = _b64decode(material)
            except ValueError as error:
                raise TokenCryptoError(f"token key {kid!r} is not valid base64") from error
            if len(key) != 32:
                raise TokenCryptoError(f"token key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            keys[kid] = key
        if not keys:
            raise TokenCryptoError("no token keys configured")
        chosen = current or next(iter(keys))
        if chosen not in keys:
            raise TokenCryptoError(f"current token key {chosen!r} is not in the key ring")
        return cls(keys=keys, current=chosen)

    @classmethod
    def from_environment(cls) -> KeyRing:
        """$TROVE_TOKEN_KEYS, else a development key kept in the local state dir (created once)."""
        spec = os.environ.get("TROVE_TOKEN_KEYS")
        if not spec:
            spec = _local_development_keys()
        return cls.parse(spec, os.environ.get("TROVE_TOKEN_KEY_ID") or None)


def _local_development_keys() -> str:
    path = Path(state_dir()) / "token_keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"dev1:{generate_key()}\n")
    return path.read_text().strip()


def _aad(account_id: str, column: str) -> bytes:
    return f"trove:{account_id}:{column}".encode()


def encrypt(ring: KeyRing, plaintext: str, *, account_id: str, column: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.keys[ring.current]).encrypt(nonce, plaintext.encode(), _aad(account_id, column))
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{VERSION}:{ring.current}:{body}"


def key_id_of(ciphertext: str) -> str:
    version, _, rest = ciphertext.partition(":")
    kid, sep, _ = rest.partition(":")
    if version != VERSION or not sep:
        raise TokenCryptoError("stored token is not in the v1 format")
    return kid


def decrypt(ring: KeyRing, ciphertext: str, *, account_id: str, column: str) -> str:
    kid = key_id_of(ciphertext)
    key = ring.keys.get(kid)
    if key is None:
        raise TokenCryptoError(f"stored token was encrypted with key {kid!r}, which is not in the key ring")
    try:
        raw = _b64decode(ciphertext.split(":", 2)[2])
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(account_id, column))
    except Exception as error:  # InvalidTag, bad padding: say what, never the material
        raise TokenCryptoError(f"stored {column} of account {account_id} does not decrypt") from error
    return plain.decode()


def needs_rotation(ring: KeyRing, ciphertext: str) -> bool:
    return key_id_of(ciphertext) != ring.current
