"""A vendor the project does not ship, registered only through settings in tests:
STT and embeddings, its own error classification, its own prices."""
from __future__ import annotations

from dataclasses import dataclass

from pipecat.utils.errors import ErrorCategory

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendor_errors import vendor_error_parts, vendor_error_report


@dataclass
class OutsideService:
    kind: str
    api_key: str
    settings: dict
    sample_rate: int | None


def build_stt(spec, sample_rate):
    return OutsideService("stt", spec.api_key, dict(spec.settings), sample_rate)


def build_embeddings(spec, _sample_rate=None):
    return OutsideService("embeddings", spec.api_key, dict(spec.settings), None)


def classify_error(error):
    exception, message = vendor_error_parts(error)
    if message.startswith("OUTSIDE-BUSY"):
        return vendor_error_report(category=ErrorCategory.RATE_LIMIT, status_code=None, exception=exception,
                                   message=message)
    return None


VENDOR = Vendor(
    name="outside",
    label="Outside Speech",
    settings_schema={"stt": {"model": Setting(str, required=True), "beam": Setting(int, min=1, max=8)},
                     "embeddings": {"dimensions": Setting(int, min=64, max=4096)}},
    builders={"stt": build_stt, "embeddings": build_embeddings},
    metrics={"stt": ("stt_seconds",), "embeddings": ("embedding_tokens",)},
    prices={"stt_seconds": {"*": VendorPrice.of("0.0100", per=60)}},
    classify_error=classify_error,
)
