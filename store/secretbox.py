"""Sealing of connection secrets: a Scrypt-derived key from ``FLOWTIDE_SECRET_KEY`` and AES-256-GCM."""

from __future__ import annotations

import base64
import functools
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

ENV = "FLOWTIDE_SECRET_KEY"
MIN_KEY_CHARS = 32
_SALT = b"flowtide/connections/v1"  # fixed: the key must derive the same in every process that shares the database
_VERSION = "v1"


class SecretKeyError(ValueError):
    """No usable ``FLOWTIDE_SECRET_KEY``, or a sealed value that this key cannot open."""


@functools.lru_cache(maxsize=4)
def _derive(passphrase: str) -> bytes:
    # Scrypt, not a plain hash: the key may be a human-chosen string; derived once per process and key.
    return Scrypt(salt=_SALT, length=32, n=2**14, r=8, p=1).derive(passphrase.encode("utf-8"))


def _key() -> bytes:
    passphrase = os.environ.get(ENV, "")
    if len(passphrase) < MIN_KEY_CHARS:
        raise SecretKeyError(f"{ENV} must be set to a string of at least {MIN_KEY_CHARS} characters "
                             "(the same on the service, the CLI and every worker)")
    return _derive(passphrase)


def seal(name: str, secret: dict[str, Any]) -> str:
    """``secret`` as ``v1:<base64(nonce + ciphertext)>``, bound to the connection ``name`` (the AAD)."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key()).encrypt(nonce, json.dumps(secret).encode(), name.encode())
    return f"{_VERSION}:" + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(name: str, blob: str) -> dict[str, Any]:
    """The secret dict sealed by ``seal`` for ``name``.

    Raises:
        SecretKeyError: no key, another key, or a blob moved to another connection's row.
    """
    version, _, data = blob.partition(":")
    if version != _VERSION:
        raise SecretKeyError(f"connection '{name}': unknown sealing format '{version}'")
    raw = base64.b64decode(data)
    try:
        plain = AESGCM(_key()).decrypt(raw[:12], raw[12:], name.encode())
    except InvalidTag:
        raise SecretKeyError(f"connection '{name}' cannot be opened with this {ENV} (was it sealed with "
                             "another key?)") from None
    value = json.loads(plain)
    return value if isinstance(value, dict) else {}
