"""Choosing and leasing provider keys.

A call leases one key per vendor it uses. The client's own keys come first and
rotate round-robin; a key at its concurrency cap or in a rate-limit cooldown is
skipped. When the client has no usable key of its own, the agency's keys that
this client is allowed to use (apps.providers_agency) are tried the same way.

A key is referred to by a "key ref": "<id>" for the client's ProviderAccount,
"agency:<id>" for an AgencyProviderAccount. Calls record refs (Call.*_key_id).

The lease book is a Redis sorted set per key (member = call id, score = lease
expiry), changed by one Lua script so two calls can never both take the last
slot. Agency keys have one book across all clients (their cap is global).
Leases expire on their own, so a crashed call cannot hold a slot forever."""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFound, ProviderError
from apps.providers.models import ProviderAccount
from apps.providers_agency.models import AGENCY_KEY_PREFIX, AgencyProviderAccount
from apps.tenancy.audit import CURRENT, audit_log_record

logger = logging.getLogger(__name__)

# A lease outlives the longest call a little; it is released at call end.
LEASE_GRACE_SECS = 120

_LEASE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local cap = tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

LeasableAccount = ProviderAccount | AgencyProviderAccount


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def key_ref_parse(key_ref: int | str) -> tuple[type[LeasableAccount], int]:
    """(model, pk) for a key ref: 12 / "12" -> the client's ProviderAccount 12,
    "agency:3" -> AgencyProviderAccount 3."""
    text = str(key_ref)
    model: type[LeasableAccount] = ProviderAccount
    if text.startswith(AGENCY_KEY_PREFIX):
        model, text = AgencyProviderAccount, text.removeprefix(AGENCY_KEY_PREFIX)
    try:
        return model, int(text)
    except ValueError:
        raise ApplicationError(f"Not a provider key reference: {key_ref!r}.", details={"key_id": str(key_ref)}) from None


def _lease_key(key_ref: int | str) -> str:
    model, pk = key_ref_parse(key_ref)
    if model is AgencyProviderAccount:
        return f"sb:provider-lease:agency:{pk}"
    return f"sb:provider-lease:{connection.schema_name}:{pk}"


def _rotation_key(provider: str, *, agency: bool = False) -> str:
    scope = "agency" if agency else connection.schema_name
    return f"sb:provider-rotation:{scope}:{provider}"


def provider_key_in_use(*, account: LeasableAccount) -> int:
    """How many live leases the key holds now."""
    key = _lease_key(account.key_ref)
    _redis().zremrangebyscore(key, "-inf", time.time())
    return _redis().zcard(key)


def _lease_one(account: LeasableAccount, *, call_id: str, max_secs: float, now=None) -> bool:
    """Take a slot on this key for the call (atomic: cap and expiry in one Lua script); False when it is
    cooling down after a 429 or at its concurrency cap."""
    now = now or timezone.now()
    if account.cooldown_until and account.cooldown_until > now:
        return False
    script = _redis().register_script(_LEASE_SCRIPT)
    return bool(script(
        keys=[_lease_key(account.key_ref)],
        args=[time.time(), time.time() + max_secs + LEASE_GRACE_SECS, str(call_id), account.max_concurrency,
              int(max_secs + LEASE_GRACE_SECS)],
    ))


def _lease_first_free(accounts: list[LeasableAccount], *, rotation_key: str, call_id: str,
                      max_secs: float) -> LeasableAccount | None:
    if not accounts:
        return None
    now = timezone.now()
    start = _redis().incr(rotation_key) - 1
    for offset in range(len(accounts)):
        account = accounts[(start + offset) % len(accounts)]
        if _lease_one(account, call_id=call_id, max_secs=max_secs, now=now):
            return account
    return None


def provider_key_lease(*, provider: str, call_id: str, max_secs: float = 3600) -> LeasableAccount:
    """Lease a key of `provider` for one call: the client's own keys first
    (rotating, skipping keys in cooldown or at their cap), then the agency keys
    this client may use. Raises ProviderError (retryable) when every key is
    busy, (terminal) when there is none at all."""
    from apps.providers_agency.selectors import agency_accounts_for_client

    own = list(ProviderAccount.objects.filter(provider=provider, is_active=True).order_by("id"))
    leased = _lease_first_free(own, rotation_key=_rotation_key(provider), call_id=call_id, max_secs=max_secs)
    if leased is not None:
        return leased
    agency = list(agency_accounts_for_client(client=connection.tenant, provider=provider))
    leased = _lease_first_free(agency, rotation_key=_rotation_key(provider, agency=True), call_id=call_id,
                               max_secs=max_secs)
    if leased is not None:
        return leased
    if not own and not agency:
        raise ProviderError(f"No {provider} key is configured for this client: add one under Provider accounts.",
                            retryable=False, details={"provider": provider})
    raise ProviderError(f"Every {provider} key is busy or rate-limited; try again shortly.",
                        retryable=True, details={"provider": provider})


def provider_key_first_usable(*, provider: str) -> LeasableAccount | None:
    """The key a preview (no call, no lease) would use: own first, then agency."""
    from apps.providers_agency.selectors import agency_accounts_for_client

    account = ProviderAccount.objects.filter(provider=provider, is_active=True).order_by("id").first()
    if account is None:
        account = agency_accounts_for_client(client=connection.tenant, provider=provider).first()
    return account


def provider_key_release(*, account_id: int | str, call_id: str) -> None:
    """Free the call's slot on a key. `account_id`: a key ref (12, "12", "agency:3")."""
    _redis().zrem(_lease_key(account_id), str(call_id))


def provider_key_mark_rate_limited(*, account_id: int | str, cooldown_secs: float = 60) -> None:
    """The vendor said 429 for this key: skip it until the cooldown ends.
    `account_id`: a key ref (ProviderSpec.key_id: 12, "12" or "agency:3"). An
    agency key cools down for every client that shares it."""
    model, pk = key_ref_parse(account_id)
    until = timezone.now() + timedelta(seconds=cooldown_secs)
    model.objects.filter(pk=pk).update(cooldown_until=until)
    logger.warning("provider key %s rate-limited until %s", account_id, until.isoformat())


# --- the client's own accounts (portal) ---------------------------------------------------------------------


# A key serving more calls at once than this is a typo (and the column is a 32-bit integer).
MAX_CONCURRENCY_LIMIT = 10_000
BASE_URL_SCHEMES = ("http", "https")


def provider_base_url_problem(base_url: str) -> str | None:
    """Why `base_url` cannot be a vendor endpoint, or None. Only http(s) URLs with a
    host: the server calls it with the key, so file:, javascript:, gopher: and the
    like are refused. Hosts without a dot are fine (a compose service, localhost)."""
    text = base_url.strip()
    if not text:
        return None
    if any(char.isspace() or ord(char) < 32 for char in text):
        return "The base URL must not contain spaces or control characters."
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return f"{text[:80]!r} is not a valid URL."
    if parts.scheme.lower() not in BASE_URL_SCHEMES:
        given = f", not {parts.scheme[:20]!r}" if parts.scheme else ""
        return f"The base URL must start with http:// or https://{given}."
    if not parts.hostname:
        return "The base URL needs a host, e.g. https://api.example.com/v1."
    if parts.username or parts.password:
        return "Put credentials in the key fields, not in the base URL."
    return None


def provider_account_problems(*, provider: str, api_key: str, base_url: str, secret: str,
                              max_concurrency) -> dict[str, str]:
    """{field: message} of what a call could not use in a key (client's or agency's);
    empty when the key is fine. The one check behind the portal and both admins."""
    from apps.providers.registry import vendors

    errors: dict[str, str] = {}
    vendor = vendors().get(provider)
    if vendor is None:
        errors["provider"] = f"Unknown provider {provider!r}; choose one of {sorted(vendors())}."
    else:
        if vendor.needs_key and not (api_key or "").strip():
            errors["api_key"] = f"{vendor.label} needs an API key."
        if vendor.needs_base_url and not (base_url or "").strip():
            errors["base_url"] = f"{vendor.label} needs a base URL / endpoint."
        if vendor.needs_secret and not (secret or "").strip():
            errors["secret"] = f"{vendor.label} needs its secret key as well."
    problem = provider_base_url_problem(base_url or "")
    if problem:
        errors["base_url"] = problem
    if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
            or not 0 <= max_concurrency <= MAX_CONCURRENCY_LIMIT):
        errors["max_concurrency"] = f"Concurrency must be between 0 (no cap) and {MAX_CONCURRENCY_LIMIT:,}."
    return errors


@transaction.atomic
def provider_account_create(*, provider: str, api_key: str = "", label: str = "", base_url: str = "", region: str = "",
                            secret: str = "", max_concurrency: int = 0) -> ProviderAccount:
    """Add one of the client's own keys. Refuses what a call could not use."""
    errors = provider_account_problems(provider=provider, api_key=api_key, base_url=base_url, secret=secret,
                                       max_concurrency=max_concurrency)
    if errors:
        raise ApplicationError(f"The key cannot be saved: {next(iter(errors.values()))}", details=errors)
    account = ProviderAccount.objects.create(
        provider=provider, api_key=api_key.strip(), label=label.strip(), base_url=base_url.strip(),
        region=region.strip(), secret=secret.strip(), max_concurrency=max_concurrency,
    )
    audit_log_record(actor=CURRENT, client=CURRENT, event_type="provider_key_created", target=account, changes={"provider": {"before": None, "after": provider}, "api_key": {"before": "", "after": "(set)" if account.api_key else ""}})
    return account


def provider_account_disable(*, account_id: int) -> ProviderAccount:
    """Stop using a key (kept for the record of calls it served). Idempotent."""
    account = ProviderAccount.objects.filter(pk=account_id).first()
    if account is None:
        raise NotFound("No such provider key.", details={"account_id": account_id})
    if account.is_active:
        account.is_active = False
        account.save(update_fields=["is_active"])
        audit_log_record(actor=CURRENT, client=CURRENT, event_type="provider_key_disabled", target=account, changes={"is_active": {"before": True, "after": False}})
    return account


# --- vendor errors during a call (the voice runtime reports them here) ---------------------------------------


def _provider_of_key(key_id: int | str) -> str | None:
    try:
        model, pk = key_ref_parse(key_id)
    except ApplicationError:
        return None
    return model.objects.filter(pk=pk).values_list("provider", flat=True).first()


def provider_error_report(*, call_id, key_id: int | str | None, error, provider: str | None = None):
    """The runtime's one call when a vendor fails mid-call. Classifies `error`
    (exception, Pipecat ErrorFrame or text) the vendor's way
    (apps.providers.registry.vendor_error_classify: the vendor module's own
    classify_error, else apps.providers.vendor_errors) and, when the vendor
    throttled this key (429 / quota), cools the key down so the next calls lease
    other keys. `provider`: the vendor's registry name; when not given, the vendor
    of the key `key_id` (the stage's ProviderSpec.key_id; None for keyless vendors:
    nothing to cool down). Returns the VendorErrorReport: `.retryable` says whether
    trying again may help. Sync (it reads the key and writes the cooldown): call it
    via sync_to_async inside the tenant schema."""
    from apps.providers.registry import vendor_error_classify
    from apps.providers.vendor_errors import RATE_LIMITED

    has_key = key_id not in (None, "")
    if provider is None and has_key:
        provider = _provider_of_key(key_id)
    report = vendor_error_classify(provider, error)
    if report.outcome == RATE_LIMITED and has_key:
        provider_key_mark_rate_limited(account_id=key_id, cooldown_secs=report.cooldown_secs)
    logger.warning("call %s: %s error on key %s classified %s (%s, status %s): %s", call_id, provider or "vendor",
                   key_id, report.outcome, report.category, report.status_code, report.message)
    from apps.observability.services import vendor_error_count  # the operators' errors-by-vendor figure

    vendor_error_count(provider=provider, outcome=report.outcome)
    return report


# --- failover within a call (apps.calls.services.call_key_failover) -------------------------------------


def provider_key_standby(*, provider: str, exclude_key_ref: str | None) -> LeasableAccount | None:
    """Another key of `provider` a live call could move to if its key is throttled:
    the client's own keys first, then the agency's it may use; not cooling down.
    Only read, never leased: `provider_key_lease_ref` takes it when it is needed."""
    from apps.providers_agency.selectors import agency_accounts_for_client

    now = timezone.now()
    candidates = list(ProviderAccount.objects.filter(provider=provider, is_active=True).order_by("id"))
    candidates += list(agency_accounts_for_client(client=connection.tenant, provider=provider))
    for account in candidates:
        if account.key_ref != exclude_key_ref and not (account.cooldown_until and account.cooldown_until > now):
            return account
    return None


def provider_key_lease_ref(*, key_ref: str, call_id: str, max_secs: float = 3600) -> bool:
    """Lease this one key for a call (its cap and cooldown respected); False when it cannot serve."""
    model, pk = key_ref_parse(key_ref)
    account = model.objects.filter(pk=pk, is_active=True).first()
    return account is not None and _lease_one(account, call_id=call_id, max_secs=max_secs)


# --- the agent editor's voice preview -----------------------------------------------------------------------

VOICE_PREVIEW_MAX_CHARS = 300


def provider_voice_preview(*, provider: str, settings: dict, text: str) -> bytes:
    """`text` said by this TTS vendor and settings (a key of the client's or the agency's, not
    leased: no call), as a 16 kHz mono WAV. Refuses an unknown vendor, settings it does not take,
    a missing key, empty or over-long text; a vendor that fails is a ProviderError naming it."""
    import asyncio

    from apps.providers.registry import build_tts, provider_config_validate, provider_spec_for
    from apps.voice.preview import PREVIEW_SAMPLE_RATE, VoicePreviewError, synthesize_preview

    text = (text or "").strip()
    if not text:
        raise ApplicationError("Write something for the voice to say.", details={"text": "empty"})
    if len(text) > VOICE_PREVIEW_MAX_CHARS:
        raise ApplicationError(f"A preview says at most {VOICE_PREVIEW_MAX_CHARS} characters.",
                               details={"text": f"{len(text)} characters"})
    # Unknown vendor, one without TTS, settings it does not take, no usable key: refused, naming it.
    provider_config_validate(kind="tts", provider=provider, settings=settings or {})
    spec = provider_spec_for(kind="tts", provider=provider, settings=settings or {})
    try:
        tts = build_tts(spec, sample_rate=PREVIEW_SAMPLE_RATE)
        return asyncio.run(synthesize_preview(tts, text))
    except VoicePreviewError as error:
        raise ProviderError(f"{provider} could not say the preview: {error}", retryable=True,
                            details={"tts_provider": provider}) from None
