"""The one door to provider vendors (STT, LLM, TTS, and any kind in KINDS).

Callers ask for "the STT for this spec" (`build_stt(spec)`) and never import a
vendor. Each vendor is one module exposing `VENDOR = Vendor(...)`; the list of
modules is settings.PROVIDER_VENDOR_MODULES (config/settings/base.py; default:
every bundled vendor), so adding a provider touches one new file and one
settings line. Swapping an agent's provider is a configuration change.

A vendor module owns everything about its vendor: the Pipecat builders per
kind, the settings schema, the usage metrics each kind bills and their prices,
and (optionally) how its errors are classified (`classify_error`)."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.errors import ApplicationError

TELEPHONY_SAMPLE_RATE = 8000


@dataclass(frozen=True)
class Kind:
    """One kind of provider: what a vendor can offer and an agent can pick."""

    name: str  # "stt"
    label: str  # "Speech to text"
    short: str  # "STT", in messages
    # The usage metrics a vendor of this kind may bill (apps.billing.metrics names; a kind without
    # vendors yet may name metrics billing does not meter yet).
    metrics: tuple[str, ...]


# The kinds of provider. A new kind is one line here; vendors then offer it through `builders`.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("stt", "Speech to text", "STT", ("stt_seconds",)),
    Kind("llm", "Language model", "LLM", ("llm_input_tokens", "llm_output_tokens", "llm_cached_tokens")),
    Kind("tts", "Text to speech", "TTS", ("tts_characters",)),
    Kind("speech_to_speech", "Speech to speech", "Speech-to-speech",
         ("s2s_input_audio_tokens", "s2s_output_audio_tokens", "s2s_input_text_tokens", "s2s_output_text_tokens")),
    Kind("embeddings", "Embeddings", "Embeddings", ("embedding_tokens",)),
)}


def kind_get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ApplicationError(f"Unknown provider kind {name!r}; choose one of {sorted(KINDS)}.",
                               details={"kind": name}) from None


def kind_choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.label) for kind in KINDS.values()]


@dataclass(frozen=True)
class Setting:
    """One field of a vendor's per-agent settings. `min` / `max` bound numbers."""

    type: type | tuple[type, ...]
    required: bool = False
    choices: tuple = ()
    help: str = ""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Vendor:
    name: str
    label: str
    # kind (a KINDS name) -> {setting name: Setting}
    settings_schema: dict[str, dict[str, Setting]]
    # kind -> builder(spec, sample_rate) -> Pipecat service
    builders: dict[str, Callable]
    # kind -> the usage metrics this vendor produces for that kind (a subset of KINDS[kind].metrics).
    # Every kind in `builders` must say, even if only (): it is who gets billed for what.
    metrics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    needs_key: bool = True
    needs_base_url: bool = False  # account must carry a base_url (OpenAI-compatible servers, Azure endpoint)
    needs_secret: bool = False  # account must carry a second secret (AWS)
    # What the vendor charges us, for margins: {usage metric: {dimension (model/voice) or "*": VendorPrice}}.
    # List prices; settings.PROVIDER_PRICES overrides them (see apps.providers.prices).
    prices: dict = field(default_factory=dict)
    # classify_error(error) -> VendorErrorReport | None: what this vendor's failures mean when the
    # status code alone misleads (None: apps.providers.vendor_errors decides).
    classify_error: Callable | None = None
    # Its STT builder passes the agent's dictionary (ProviderSpec.vocabulary) on as keyword boosting
    # (Deepgram keyterms, Speechmatics additional vocab, OpenAI's prompt); otherwise the runtime
    # post-corrects transcripts against the dictionary (apps/voice/processors/stt_dictionary.py).
    boosts_vocabulary: bool = False

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.builders)


def _vendor_check(vendor: Vendor, module_name: str) -> None:
    """Refuse at start-up a vendor module that would misbill or not build."""
    def refuse(problem: str):
        raise ImproperlyConfigured(f"{module_name}: vendor {vendor.name!r} {problem}")

    for kind in vendor.kinds:
        if kind not in KINDS:
            refuse(f"offers unknown kind {kind!r}; known kinds: {sorted(KINDS)}.")
        if kind not in vendor.metrics:
            refuse(f"must declare the usage metrics its {kind} bills (Vendor.metrics[{kind!r}]).")
        stray = set(vendor.metrics[kind]) - set(KINDS[kind].metrics)
        if stray:
            refuse(f"declares {sorted(stray)} for {kind}, which bills only {list(KINDS[kind].metrics)}.")
    extra = set(vendor.metrics) - vendor.kinds
    if extra:
        refuse(f"declares metrics for kinds it does not build: {sorted(extra)}.")
    billed = {metric for metrics in vendor.metrics.values() for metric in metrics}
    unpriceable = set(vendor.prices) - billed
    if unpriceable:
        refuse(f"prices metrics it does not bill: {sorted(unpriceable)}.")


@lru_cache(maxsize=1)
def vendors() -> dict[str, Vendor]:
    """The vendors of settings.PROVIDER_VENDOR_MODULES by name. Cached: tests that
    change the setting call `vendors.cache_clear()`."""
    found: dict[str, Vendor] = {}
    for module_name in django_settings.PROVIDER_VENDOR_MODULES:
        vendor = getattr(importlib.import_module(module_name), "VENDOR", None)
        if not isinstance(vendor, Vendor):
            raise ImproperlyConfigured(f"{module_name} has no VENDOR = Vendor(...).")
        _vendor_check(vendor, module_name)
        if vendor.name in found:
            raise ImproperlyConfigured(f"{module_name}: a vendor named {vendor.name!r} is already registered.")
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
    """(name, label) of the vendors offering `kind` (any kind in KINDS)."""
    kind_get(kind)
    return [(vendor.name, vendor.label) for vendor in vendors().values() if kind in vendor.kinds]


def vendor_for(*, kind: str, provider: str) -> Vendor:
    """The vendor named `provider`, refusing one that does not offer `kind`."""
    kind_info = kind_get(kind)
    vendor = vendor_get(provider)
    if kind not in vendor.kinds:
        raise ApplicationError(f"{vendor.label} does not offer {kind_info.short}.",
                               details={"provider": provider, "kind": kind})
    return vendor


def _number_out_of_range(value, rule: Setting) -> bool:
    return (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max)


def _range_text(rule: Setting) -> str:
    if rule.min is not None and rule.max is not None:
        return f"between {rule.min:g} and {rule.max:g}"
    return f"at least {rule.min:g}" if rule.min is not None else f"at most {rule.max:g}"


def settings_validate(*, kind: str, provider: str, settings: dict) -> None:
    """Check settings against the vendor's schema (no database). Refusals about a
    setting carry details["setting"]."""
    vendor = vendor_for(kind=kind, provider=provider)
    short = kind_get(kind).short
    if not isinstance(settings, dict):
        raise ApplicationError(f"{short} settings must be an object.", details={"provider": provider, "setting": ""})
    schema = vendor.settings_schema.get(kind, {})
    unknown = sorted(set(settings) - set(schema))
    if unknown:
        raise ApplicationError(
            f"{vendor.label} {short} has no setting {', '.join(unknown)}; known: {', '.join(sorted(schema))}.",
            details={"provider": provider, "unknown": unknown, "setting": unknown[0]},
        )
    for name, rule in schema.items():
        value = settings.get(name)
        details = {"provider": provider, "setting": name}
        if value is None or value == "":
            if rule.required:
                raise ApplicationError(f"{vendor.label} {short} needs '{name}'.", details={**details, "missing": name})
            continue
        numeric = rule.type in (int, float, (int, float))
        if isinstance(value, bool) and numeric:
            raise ApplicationError(f"{vendor.label} {short} '{name}' must be a number.", details=details)
        if not isinstance(value, rule.type):
            expected = rule.type.__name__ if isinstance(rule.type, type) else " or ".join(t.__name__ for t in rule.type)
            raise ApplicationError(f"{vendor.label} {short} '{name}' must be {expected}, not {value!r}.", details=details)
        if rule.choices and value not in rule.choices:
            raise ApplicationError(f"{vendor.label} {short} '{name}' must be one of {list(rule.choices)}.",
                                   details=details)
        if numeric and (value != value or _number_out_of_range(value, rule)):  # value != value: NaN
            raise ApplicationError(f"{vendor.label} {short} '{name}' must be {_range_text(rule)}, not {value!r}.",
                                   details=details)


def provider_credential_validate(*, provider: str) -> None:
    """This client has a usable credential for `provider` (tenant schema): a key
    of its own, or an agency key the agency lets this client use."""
    from django.db import connection

    from apps.providers.models import ProviderAccount
    from apps.providers_agency.selectors import agency_accounts_exist, agency_accounts_for_client

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


def provider_config_validate(*, kind: str, provider: str, settings: dict) -> None:
    """Settings are valid and this client has a usable credential (tenant schema)."""
    settings_validate(kind=kind, provider=provider, settings=settings)
    provider_credential_validate(provider=provider)


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
    return vendor_for(kind=kind, provider=spec.provider).builders[kind](spec, sample_rate)


def build(kind: str, spec, *, sample_rate: int | None = None):
    """The service for a ProviderSpec of any kind in KINDS (build_stt / build_llm /
    build_tts are this with the telephony sample rate where audio is involved)."""
    return _build(kind, spec, sample_rate)


def build_stt(spec, *, sample_rate: int = TELEPHONY_SAMPLE_RATE):
    """The Pipecat STT service for a ProviderSpec (no network at construction)."""
    return _build("stt", spec, sample_rate)


def build_llm(spec):
    return _build("llm", spec, None)


def build_tts(spec, *, sample_rate: int = TELEPHONY_SAMPLE_RATE):
    return _build("tts", spec, sample_rate)


def stt_boosts_vocabulary(provider: str) -> bool:
    """Whether `provider`'s STT takes the dictionary as keyword boosting (pure)."""
    vendor = vendors().get(provider)
    return bool(vendor is not None and vendor.boosts_vocabulary)


def build_s2s(spec, *, sample_rate: int = TELEPHONY_SAMPLE_RATE, silence_secs: float = 0.5, language_code: str = ""):
    """The Pipecat speech-to-speech service (audio in; audio, transcripts and tool calls out)
    for a ProviderSpec. `silence_secs`: the pause that ends the caller's turn (the vendor's
    server VAD); `language_code`: the agent's language (BCP-47), for its transcription."""
    vendor = vendor_for(kind="speech_to_speech", provider=spec.provider)
    return vendor.builders["speech_to_speech"](spec, sample_rate, silence_secs=silence_secs,
                                               language_code=language_code)


# --- what a vendor bills, and what its errors mean -------------------------------------------------------------


def vendor_metrics(provider: str, kind: str) -> tuple[str, ...]:
    """The usage metrics `provider` bills when it serves as `kind` (pure, no database)."""
    return vendor_for(kind=kind, provider=provider).metrics[kind]


def usage_provider_for(*, metric: str, providers: dict[str, str]) -> str:
    """The name of the provider that bills `metric` on a call that used `providers`
    ({"stt": "deepgram", "llm": "openai", "tts": "elevenlabs"}). Kinds bill disjoint
    metrics (KINDS), so at most one of them does. Raises ApplicationError when
    none of them bills `metric` (pure, no database)."""
    for kind, provider in providers.items():
        if provider and metric in vendor_metrics(provider, kind):
            return provider
    used = ", ".join(f"{kind}={provider}" for kind, provider in providers.items() if provider) or "none"
    raise ApplicationError(f"No provider of this call ({used}) bills {metric!r}.",
                           details={"metric": metric, "providers": dict(providers)})


def vendor_error_classify(provider: str | None, error):
    """A VendorErrorReport for `error` raised by `provider`: the vendor module's own
    `classify_error` first, the default (apps.providers.vendor_errors) when it has
    none or it returns None. An unknown or missing provider gets the default."""
    from apps.providers import vendor_errors

    vendor = vendors().get(provider) if provider else None
    if vendor is not None and vendor.classify_error is not None:
        report = vendor.classify_error(error)
        if report is not None:
            return report
    return vendor_errors.vendor_error_classify(error)
