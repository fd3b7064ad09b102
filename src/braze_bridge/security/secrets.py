"""Secrets at rest: Fernet (AES-128-CBC + HMAC) keyed from BRAZE_BRIDGE_SECRET_KEY via HKDF.

Key rotation: encrypt with the current key, decrypt with it or any old key; `rotate()` re-encrypts
a ciphertext under the current key (MultiFernet does the bookkeeping).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_HKDF_INFO = b"braze-bridge secrets at rest v1"


class SecretDecryptError(Exception):
    """No configured key opens this ciphertext (wrong BRAZE_BRIDGE_SECRET_KEY?)."""


def derive_fernet_key(secret_key: str) -> bytes:
    """Any string becomes a 32-byte Fernet key; the same string always gives the same key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


class SecretBox:
    """Encrypts with `current`, decrypts with `current` or any of `old`."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        if not current:
            raise ValueError("secret key must not be empty")
        keys = [Fernet(derive_fernet_key(current))]
        keys += [Fernet(derive_fernet_key(key)) for key in old if key and key != current]
        self._fernet = MultiFernet(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptError(
                "cannot decrypt a stored secret with the configured keys"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the current key (no-op in meaning, new bytes)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptError(
                "cannot decrypt a stored secret with the configured keys"
            ) from exc


def last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else ""
