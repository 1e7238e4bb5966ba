"""A vendor module that says its TTS bills tokens: the registry refuses it at load."""
from apps.providers.registry import Vendor

VENDOR = Vendor(name="misbilled", label="Misbilled", settings_schema={}, builders={"tts": lambda spec, rate: None},
                metrics={"tts": ("llm_input_tokens",)})
