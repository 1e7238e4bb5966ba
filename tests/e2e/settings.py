"""Settings for the daphne child process of the end-to-end call tests: the test
settings with a short LLM timeout (the carrier REST base URLs come from the
environment, as in base settings)."""
import os

from config.settings.test import *  # noqa: F401,F403

VOICE_PROVIDER_TIMEOUT_SECS = float(os.environ.get("VOICE_PROVIDER_TIMEOUT_SECS", "1.5"))
