"""Secrets kept by a service (such as a cloud storage's keys), encrypted at rest.

The database holds only ciphertext (Fernet: AES-128-CBC with an HMAC-SHA256 tag); the key
is derived from a passphrase given to the service (`TESSERA_SECRETS_KEY`, from a
Kubernetes Secret in production), so a dump of the database does not reveal the secrets.
"""

from __future__ import annotations

import base64

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_CONTEXT = b"tessera secret box v1"


class SecretUnreadable(ValueError):
    """The ciphertext was made with another key, or was altered."""


class SecretBox:
    """Encrypts and decrypts small JSON secrets with a key derived from a passphrase."""

    def __init__(self, passphrase: str) -> None:
        if len(passphrase) < 16:
            raise ValueError("the secrets passphrase must have at least 16 characters")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(
            passphrase.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: dict[str, str]) -> bytes:
        """The ciphertext of a JSON object of strings."""
        return self._fernet.encrypt(orjson.dumps(secret))

    def open(self, ciphertext: bytes) -> dict[str, str]:
        """The JSON object sealed in `ciphertext`; SecretUnreadable if it cannot be read."""
        try:
            value = orjson.loads(self._fernet.decrypt(ciphertext))
        except InvalidToken as exc:
            raise SecretUnreadable("the secret was sealed with another key or altered") from exc
        if not isinstance(value, dict):
            raise SecretUnreadable("the secret is not a JSON object")
        return {str(k): str(v) for k, v in value.items()}
