"""Settings for the daphne child process of the end-to-end call tests: the test
settings, with the Twilio REST API pointed at the local double."""
import os

from config.settings.test import *  # noqa: F401,F403

TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "")
VOICE_PROVIDER_TIMEOUT_SECS = float(os.environ.get("VOICE_PROVIDER_TIMEOUT_SECS", "1.5"))
