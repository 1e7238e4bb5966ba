"""Test settings: real PostgreSQL and Redis (embedded when DATABASE_URL / REDIS_URL
are unset), outside services reached only through local doubles."""
import os
import secrets

from cryptography.fernet import Fernet

if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
    from config.devservices import ensure_services

    ensure_services()
os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_urlsafe(32))
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("SWITCHBOARD_ENV_FILE", "/nonexistent")

from config.settings.base import *  # noqa: E402,F401,F403
from config.settings.base import BASE_DIR, STATIC_ROOT  # noqa: E402

ALLOWED_HOSTS = ["*"]
AGENT_TOOLS_ALLOW_PRIVATE_HOSTS = True  # the tests' tool servers listen on 127.0.0.1
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = str(BASE_DIR / "var" / "test-media")
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": "/media/"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
# The browser tests load pages from daphne: serve static files from the apps and static/ without collectstatic.
WHITENOISE_USE_FINDERS = True

# Login throttling stays on, with a limit no other test reaches; apps/accounts/tests/test_login_throttling.py
# runs the real limit. Attempts live in the database, so each test's rollback clears them.
AXES_FAILURE_LIMIT = 1000
