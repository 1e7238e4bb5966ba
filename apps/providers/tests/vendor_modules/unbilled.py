"""A vendor module that does not say what its STT bills: the registry refuses it at load."""
from apps.providers.registry import Vendor

VENDOR = Vendor(name="unbilled", label="Unbilled", settings_schema={}, builders={"stt": lambda spec, rate: None})
