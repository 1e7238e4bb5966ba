"""The one door to STT / LLM / TTS vendors.

Callers ask for "the STT for this spec" (`build_stt(spec)`) and never import a
vendor. Each vendor is one module under apps/providers/vendors/ exposing
`VENDOR = Vendor(...)`; the list of modules comes from
settings.PROVIDER_VENDOR_MODULES (default: every bundled vendor), so adding a
provider touches one new file and one settings line. Swapping an agent's
provider is a configuration change."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings as django_settings

from apps.core.errors import ApplicationError

TELEPHONY_SAMPLE_RATE = 8000

DEFAULT_VENDOR_MODULES = (
    "apps.providers.vendors.deepgram",
    "apps.providers.vendors.openai",
    "apps.providers.vendors.openai_compatible",
    "apps.providers.vendors.azure_openai",
    "apps.providers.vendors.gemini",
    "apps.providers.vendors.bedrock",
    "apps.providers.vendors.speechmatics",
    "apps.providers.vendors.sarvam",
    "apps.providers.vendors.elevenlabs",
    "apps.providers.vendors.cartesia",
    "apps.providers.vendors.piper",
)


@dataclass(frozen=True)
class Setting:
    """One field of a vendor's per-agent settings."""

    type: type | tuple[type, ...]
    required: bool = False
    choices: tuple = ()
    help: str = ""


@dataclass(frozen=True)
class Vendor:
    name: str
    label: str
    # kind ("stt" / "llm" / "tts") -> {setting name: Setting}
    settings_schema: dict[str, dict[str, Setting]]
    # kind -> builder(spec, sample_rate) -> Pipecat service
    builders: dict[str, Callable]
    needs_key: bool = True
    needs_base_url: bool = False  # account must carry a base_url (OpenAI-compatible servers, Azure endpoint)
    needs_secret: bool = False  # account must carry a second secret (AWS)
    # What the vendor charges us, for margins: {usage metric: {dimension (model/voice) or "*": VendorPrice}}.
    # List prices; settings.PROVIDER_PRICES overrides them (see apps.providers.prices).
    prices: dict = field(default_factory=dict)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.builders)


@lru_cache(maxsize=1)
def vendors() -> dict[str, Vendor]:
    modules = getattr(django_settings, "PROVIDER_VENDOR_MODULES", DEFAULT_VENDOR_MODULES)
    found = {}
    for module_name in modules:
        vendor = importlib.import_module(module_name).VENDOR
        found[vendor.name] = vendor
    return found


def vendor_get(name: str) -> Vendor:
    try:
        return vendors()[name]
    except KeyError:
        raise ApplicationError(
            f"Unknown provider {name!r}; choose one of {sorted(vendors())}.", details={"provider": name}
        ) from None


def vendor_choices(kind: str) -> list[tuple[str, str]]:
    return [(vendor.name, vendor.label) for vendor in vendors().values() if kind in vendor.kinds]


def settings_validate(*, kind: str, provider: str, settings: dict) -> None:
    """Check settings against the vendor's schema (no database)."""
    vendor = vendor_get(provider)
    if kind not in vendor.kinds:
        raise ApplicationError(f"{vendor.label} does not offer {kind.upper()}.", details={"provider": provider})
    if not isinstance(settings, dict):
        raise ApplicationError(f"{kind.upper()} settings must be an object.", details={"provider": provider})
    schema = vendor.settings_schema.get(kind, {})
    unknown = sorted(set(settings) - set(schema))
    if unknown:
        raise ApplicationError(
            f"{vendor.label} {kind.upper()} has no setting {', '.join(unknown)}; known: {', '.join(sorted(schema))}.",
            details={"provider": provider, "unknown": unknown},
        )
    for name, rule in schema.items():
        value = settings.get(name)
        if value is None or value == "":
            if rule.required:
                raise ApplicationError(f"{vendor.label} {kind.upper()} needs '{name}'.",
                                       details={"provider": provider, "missing": name})
            continue
        if isinstance(value, bool) and rule.type in (int, float, (int, float)):
            raise ApplicationError(f"{vendor.label} {kind.upper()} '{name}' must be a number.")
        if not isinstance(value, rule.type):
            expected = rule.type.__name__ if isinstance(rule.type, type) else " or ".join(t.__name__ for t in rule.type)
            raise ApplicationError(f"{vendor.label} {kind.upper()} '{name}' must be {expected}, not {value!r}.",
                                   details={"provider": provider, "field": name})
        if rule.choices and value not in rule.choices:
            raise ApplicationError(f"{vendor.label} {kind.upper()} '{name}' must be one of {list(rule.choices)}.",
                                   details={"provider": provider, "field": name})


def provider_config_validate(*, kind: str, provider: str, settings: dict) -> None:
    """Settings are valid and this client has a usable credential (tenant schema):
    a key of its own, or an agency key the agency lets this client use."""
    from django.db import connection

    from apps.providers.models import ProviderAccount
    from apps.providers_agency.selectors import agency_accounts_exist, agency_accounts_for_client

    settings_validate(kind=kind, provider=provider, settings=settings)
    vendor = vendor_get(provider)
    if not vendor.needs_key:
        return
    accounts = ProviderAccount.objects.filter(provider=provider, is_active=True)
    source = "Your"
    if not accounts.exists():
        client = connection.tenant
        accounts = agency_accounts_for_client(client=client, provider=provider)
        source = "The agency's"
        if not accounts.exists():
            if agency_accounts_exist(provider=provider):
                raise ApplicationError(
                    f"The agency's {vendor.label} key is not available to {client.name}: ask your agency to allow "
                    f"it, or add your own {vendor.label} key under Provider accounts.",
                    details={"provider": provider, "reason": "agency_key_not_allowed"},
                )
            raise ApplicationError(
                f"No {vendor.label} credential is configured: add a key for {vendor.label} under Provider accounts first.",
                details={"provider": provider},
            )
    if vendor.needs_base_url and not accounts.exclude(base_url="").exists():
        raise ApplicationError(f"{source} {vendor.label} account needs a base URL / endpoint.", details={"provider": provider})
    if vendor.needs_secret and not accounts.exclude(secret="").exists():
        raise ApplicationError(f"{source} {vendor.label} account needs its secret key.", details={"provider": provider})


def provider_spec_for(*, kind: str, provider: str, settings: dict, call_id: str | None = None, max_secs: float = 3600):
    """A ProviderSpec for one stage, with a key leased for `call_id` (if given).
    spec.key_id is the key ref that served: "12" (the client's own key 12) or
    "agency:3" (the agency's key 3)."""
    from apps.agents.selectors import ProviderSpec
    from apps.providers.services import provider_key_first_usable, provider_key_lease

    vendor = vendor_get(provider)
    account = None
    if vendor.needs_key:
        if call_id is not None:
            account = provider_key_lease(provider=provider, call_id=str(call_id), max_secs=max_secs)
        else:
            account = provider_key_first_usable(provider=provider)
    return ProviderSpec(
        kind=kind, provider=provider, settings=dict(settings or {}),
        api_key=account.api_key if account else "", key_id=account.key_ref if account else None,
        base_url=account.base_url if account else "", region=account.region if account else "",
        secret=account.secret if account else "",
    )


def _build(kind: str, spec, sample_rate: int | None):
    vendor = vendor_get(spec.provider)
    if kind not in vendor.kinds:
        raise ApplicationError(f"{vendor.label} does not offer {kind.upper()}.")
    return vendor.builders[kind](spec, sample_rate)


def build_stt(spec, *, sample_rate: int = TELEPHONY_SAMPLE_RATE):
    """The Pipecat STT service for a ProviderSpec (no network at construction)."""
    return _build("stt", spec, sample_rate)


def build_llm(spec):
    return _build("llm", spec, None)


def build_tts(spec, *, sample_rate: int = TELEPHONY_SAMPLE_RATE):
    return _build("tts", spec, sample_rate)
