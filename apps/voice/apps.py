import sys

from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "apps.voice"
    label = "voice"

    def ready(self):
        # Pipecat logs through loguru, by default at DEBUG to stderr (dozens of
        # lines per turn, formatted on the event loop). Follow the project's level.
        from django.conf import settings
        from loguru import logger

        level = settings.LOGGING.get("root", {}).get("level", "INFO") if isinstance(settings.LOGGING, dict) else "INFO"
        logger.remove()
        logger.add(sys.stderr, level=level)
