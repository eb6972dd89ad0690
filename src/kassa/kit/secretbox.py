"""The operator's key that keeps stored secrets encrypted at rest, and the box that uses it.

A secret Kassa must read back (a webhook signing secret, a tenant's fingerprint key, an
idempotent answer that shows a secret) cannot be hashed: it is encrypted with Fernet
(AES-128-CBC with an HMAC-SHA256) under the operator's key. ``KASSA_SECRET_KEY`` holds one or
more keys, comma-separated: the first encrypts, any of them decrypts, so a key can be rotated.
Without it Kassa keeps a key in ``KASSA_SECRET_KEY_FILE`` (default ``./kassa.key``), made with
owner-only permissions on first start: right for the embedded default, while processes on several
machines must share one ``KASSA_SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def new_operator_key() -> str:
    return Fernet.generate_key().decode()


class SecretKeyError(Exception):
    """The operator's key is missing or not a Fernet key, or a stored secret does not open."""


class KeySettings(Protocol):
    """Where the operator's keys come from (``kassa.config.Settings`` has both)."""

    @property
    def secret_key(self) -> str | None: ...

    @property
    def secret_key_file(self) -> str: ...


class SecretBox:
    """Encrypts secrets for storage and decrypts them to use."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as error:
            raise SecretKeyError(
                "KASSA_SECRET_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated;"
                " make one with 'kassa secret-key'"
            ) from error

    def seal(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken as error:
            raise SecretKeyError("a stored secret does not open with KASSA_SECRET_KEY") from error

    def rotate(self, sealed: bytes) -> bytes:
        """``sealed`` encrypted again under the first key (it may have been sealed under any)."""
        try:
            return self._fernet.rotate(sealed)
        except InvalidToken as error:
            raise SecretKeyError("a stored secret does not open with KASSA_SECRET_KEY") from error

    @classmethod
    def from_settings(cls, settings: KeySettings) -> SecretBox:
        if settings.secret_key:
            return cls([key.strip() for key in settings.secret_key.split(",") if key.strip()])
        return cls([_key_file(Path(settings.secret_key_file))])


def _key_file(path: Path) -> str:
    """Read the key file, making it first if there is none. Several processes may start at once:
    each writes a whole candidate file and links it into place, and the first link wins."""
    if not path.exists():
        candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(new_operator_key() + "\n")
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
