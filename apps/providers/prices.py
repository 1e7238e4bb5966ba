"""What vendors charge us, for margins: the price table is each vendor module's
`prices` (STT/LLM/TTS vendors in apps.providers.vendors, carriers in
apps.telephony.carriers: `PRICES`), keyed {usage metric: {dimension or "*": VendorPrice}},
overridden by settings.PROVIDER_PRICES when the agency has negotiated its own:

    PROVIDER_PRICES = {"deepgram": {"stt_seconds": {"nova-3": {"amount": "0.0065", "per": 60}}},
                       "twilio": {"carrier_seconds": {"voice-inbound": {"amount": "0.0085", "per": 60,
                                                                        "increment": 60}}}}

Costs are in USD (VendorPrice.currency); the math is apps.billing.pricing.vendor_cost."""
from __future__ import annotations

import importlib
from decimal import Decimal

from django.conf import settings

from apps.billing.pricing import VendorPrice, vendor_cost

ANY_DIMENSION = "*"


def _module_prices(provider: str) -> dict:
    from apps.providers.registry import vendors

    vendor = vendors().get(provider)
    if vendor is not None:
        return vendor.prices
    try:
        carrier = importlib.import_module(f"apps.telephony.carriers.{provider}")
    except ImportError:
        return {}
    return getattr(carrier, "PRICES", {})


def provider_price(*, provider: str, metric: str, dimension: str) -> VendorPrice | None:
    """The price of one unit of `metric` for `dimension` (model, voice, carrier product);
    the vendor's "*" price when the dimension has none of its own; None if unpriced."""
    if not provider or not provider.isidentifier():
        return None
    table = dict(_module_prices(provider).get(metric, {}))
    for key, value in (getattr(settings, "PROVIDER_PRICES", {}).get(provider, {}).get(metric, {})).items():
        table[key] = value if isinstance(value, VendorPrice) else VendorPrice.of(**value)
    return table.get(dimension) or table.get(ANY_DIMENSION)


def provider_cost(*, provider: str, metric: str, dimension: str, quantity: Decimal) -> tuple[Decimal, str]:
    """(cost, currency) of `quantity` raw units; (0, "USD") for an unpriced vendor/metric
    (self-hosted servers, call_seconds that are not a vendor's charge)."""
    price = provider_price(provider=provider, metric=metric, dimension=dimension)
    if price is None:
        return Decimal("0"), "USD"
    return vendor_cost(price, quantity), price.currency
