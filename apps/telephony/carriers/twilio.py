"""Twilio: X-Twilio-Signature verification, TwiML, REST (calls.create / update)."""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient

from apps.billing.pricing import VendorPrice

# What Twilio charges us (US local numbers, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0085", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0140", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("1.15")}}


def verify(*, request, urls: list[str], auth_token: str) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    params = request.POST.dict()
    return any(validator.validate(url, params, signature) for url in urls)


def stream_twiml(*, stream_url: str, call_id: str, status_callback: str = "") -> str:
    """Connect the call's audio to our media websocket; the consumer finds the call by `call_id`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f"<Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="call_id" value={quoteattr(call_id)}/>'
        "</Stream></Connect></Response>"
    )


def say_hangup_twiml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def reject_twiml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>'


def dial_twiml(to_number: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{escape(to_number)}</Dial></Response>'


def rest_client(*, account_sid: str, auth_token: str) -> TwilioClient:
    """The SDK client; settings.TWILIO_API_BASE_URL (tests: the REST double) replaces https://api.twilio.com."""
    client = TwilioClient(account_sid, auth_token)
    base_url = getattr(settings, "TWILIO_API_BASE_URL", "")
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


def classify_error(exc: Exception):
    """A Twilio SDK failure as a ProviderError (429 and 5xx are worth retrying)."""
    from twilio.base.exceptions import TwilioRestException

    from apps.core.errors import ProviderError

    if isinstance(exc, TwilioRestException):
        retryable = exc.status == 429 or exc.status >= 500
        return ProviderError(f"Twilio refused: {exc.msg}", retryable=retryable, details={"status": exc.status, "code": exc.code})
    return ProviderError(f"Twilio unreachable: {exc}", retryable=True)


def hang_up(*, number, carrier_call_id: str) -> None:
    try:
        rest_client(account_sid=number.account_sid, auth_token=number.auth_token).calls(carrier_call_id).update(
            status="completed")
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(exc) from exc


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    """The call's TwiML is replaced by <Dial>."""
    try:
        rest_client(account_sid=number.account_sid, auth_token=number.auth_token).calls(carrier_call_id).update(
            twiml=dial_twiml(to_number))
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(exc) from exc
