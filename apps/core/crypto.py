"""Encryption at rest for provider keys and other secrets.

Fernet (AES-128-CBC + HMAC) with the keys in settings.FIELD_ENCRYPTION_KEYS,
newest first: MultiFernet decrypts with any of them and encrypts with the
first, so keys can be rotated without a data migration."""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("encrypted value cannot be decrypted with the configured keys") from exc


class EncryptedTextField(models.TextField):
    """Stores ciphertext; Python code sees plaintext. Never filter on it."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
