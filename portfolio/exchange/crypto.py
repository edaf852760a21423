"""API secrets encrypted at rest with Fernet keys from the environment (MUR_FERNET_KEYS).

MultiFernet: the first key encrypts, every key decrypts, so a key is rotated by putting a new one
first, re-encrypting (`manage.py exchange_keys_rotate`) and then dropping the old one."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """None of MUR_FERNET_KEYS decrypts a stored secret (the key that encrypted it was removed)."""


def _fernet() -> MultiFernet:
    # Built per call: cheap, and settings overridden in tests take effect at once.
    return MultiFernet([Fernet(key) for key in settings.FERNET_KEYS])


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "The stored API secret cannot be decrypted with MUR_FERNET_KEYS (was the key that encrypted it "
            "removed?); put that key back, or delete the connection and add the API key again."
        ) from None


def rotate(token: str) -> str:
    """The token re-encrypted with the first key (unchanged content)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("A stored API secret cannot be decrypted with MUR_FERNET_KEYS.") from None
