"""Classifying what a vendor answered when it failed, in Pipecat's vocabulary
(pipecat.utils.errors.ErrorCategory), into what the platform does about it:

- "rate_limited": this key is throttled (429) or out of quota; cool the key down
  so other keys serve, and try again (possibly with another key);
- "retryable": the vendor or the network hiccupped (5xx, timeout, unreachable);
  trying again may help, the key is fine;
- "terminal": the key or the request is wrong (401/403/400/404/422); trying again
  will fail the same way until a person changes a key or a setting.

This module is the default and knows no vendor: a vendor whose failures mean
something other than their status code says so in its own module
(`Vendor.classify_error`, asked first by apps.providers.registry.vendor_error_classify),
building its report with `vendor_error_report`.

Pure functions, no database: the service that applies the cooldown is
apps.providers.services.provider_error_report."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pipecat.utils.errors import ErrorCategory, classify_http_status_code, extract_http_status_code

RATE_LIMITED = "rate_limited"
RETRYABLE = "retryable"
TERMINAL = "terminal"

DEFAULT_COOLDOWN_SECS = 60.0
QUOTA_COOLDOWN_SECS = 900.0  # out of credit: someone has to top the account up
MAX_COOLDOWN_SECS = 3600.0

_OUTCOME_BY_CATEGORY = {
    ErrorCategory.RATE_LIMIT: RATE_LIMITED,
    ErrorCategory.QUOTA: RATE_LIMITED,
    ErrorCategory.AUTHENTICATION: TERMINAL,
    ErrorCategory.AUTHORIZATION: TERMINAL,
    ErrorCategory.INVALID_REQUEST: TERMINAL,
    ErrorCategory.APPLICATION: TERMINAL,  # our own code failed; the vendor and the key are fine
    ErrorCategory.CONNECTIVITY: RETRYABLE,
    ErrorCategory.SERVER: RETRYABLE,
    ErrorCategory.UNKNOWN: RETRYABLE,
}
_RATE_LIMIT_TEXT = re.compile(r"\b429\b|rate[ _-]?limit|too many requests", re.IGNORECASE)
_STATUS_TEXT = re.compile(r"\b([45]\d\d)\b")


@dataclass(frozen=True)
class VendorErrorReport:
    outcome: str  # RATE_LIMITED | RETRYABLE | TERMINAL
    category: str  # pipecat ErrorCategory value
    status_code: int | None
    cooldown_secs: float | None  # set only when outcome is RATE_LIMITED
    message: str

    @property
    def retryable(self) -> bool:
        return self.outcome != TERMINAL


def _retry_after_secs(exception: BaseException | None) -> float | None:
    """Seconds from a Retry-After header (httpx, aiohttp, websockets responses)."""
    if exception is None:
        return None
    response = getattr(exception, "response", None)
    headers = getattr(response, "headers", None) or getattr(exception, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None  # an HTTP date: fall back to the default cooldown


def _category_from_text(text: str) -> tuple[ErrorCategory, int | None]:
    if _RATE_LIMIT_TEXT.search(text):
        return ErrorCategory.RATE_LIMIT, 429
    match = _STATUS_TEXT.search(text)
    if match:
        status = int(match.group(1))
        return classify_http_status_code(status), status
    return ErrorCategory.UNKNOWN, None


def vendor_error_parts(error) -> tuple[BaseException | None, str]:
    """(the exception, if any; its text) from an exception, a Pipecat ErrorFrame or text."""
    if isinstance(error, BaseException):
        return error, str(error) or type(error).__name__
    if hasattr(error, "category") and hasattr(error, "error"):  # pipecat.frames.frames.ErrorFrame
        return error.exception, str(error.error)
    return None, str(error)


def vendor_error_status(exception: BaseException | None, message: str) -> int | None:
    """The HTTP status the exception carries, else one written in its text."""
    status = extract_http_status_code(exception) if exception is not None else None
    if status is None:
        match = _STATUS_TEXT.search(message)
        status = int(match.group(1)) if match else None
    return status


def vendor_error_report(*, category: ErrorCategory, status_code: int | None, exception: BaseException | None,
                        message: str) -> VendorErrorReport:
    """The report for an error of `category` (the cooldown from Retry-After, else the default)."""
    outcome = _OUTCOME_BY_CATEGORY[category]
    cooldown = None
    if outcome == RATE_LIMITED:
        default = QUOTA_COOLDOWN_SECS if category is ErrorCategory.QUOTA else DEFAULT_COOLDOWN_SECS
        cooldown = min(max(_retry_after_secs(exception) or default, 1.0), MAX_COOLDOWN_SECS)
    return VendorErrorReport(outcome=outcome, category=category.value, status_code=status_code,
                             cooldown_secs=cooldown, message=message[:500])


def vendor_error_classify(error) -> VendorErrorReport:
    """The default classification. `error`: an exception a vendor SDK raised, a
    Pipecat ErrorFrame (its category is used when set), or the error text alone."""
    exception, message = vendor_error_parts(error)
    category: ErrorCategory | None = None
    status: int | None = None
    if not isinstance(error, BaseException) and getattr(error, "category", None) not in (None, ErrorCategory.UNKNOWN):
        category = error.category
    if exception is not None:
        status = extract_http_status_code(exception)
        if category is None:
            from pipecat.utils.errors import classify_http_exception

            found = classify_http_exception(exception)
            category = None if found is ErrorCategory.UNKNOWN else found
    if category is None:
        category, text_status = _category_from_text(message)
        status = status or text_status
    return vendor_error_report(category=category, status_code=status, exception=exception, message=message)
