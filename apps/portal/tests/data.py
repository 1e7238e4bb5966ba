"""A client's month of calls for portal tests (server-side and browser): finished calls with turns, usage in the
billing ledger and a client rate card, all written through the services. Call within tenant_context."""
from __future__ import annotations

import io
import wave
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from apps.billing.services import metric_rate_set, rate_card_create
from apps.calls.models import Call
from apps.calls.services import call_answered, call_create_inbound, call_end, call_turn_record, call_usage_ship
from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import make_agent


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def client_rate_card(client, *, currency: str = "USD"):
    """Per second: inbound 0.06/min; TTS 0.30 per started 1,000 characters; no fee, no tax."""
    card = rate_card_create(client=client, effective_from=date(2025, 1, 1), currency=currency)
    metric_rate_set(card=card, metric="call_seconds_inbound", model="per_unit", unit_price=Decimal("0.06"),
                    unit_divisor=Decimal("60"), unit_label="min", description="Inbound minutes")
    metric_rate_set(card=card, metric="tts_characters", model="package", unit_price=Decimal("0.30"),
                    package_size=Decimal("1000"), unit_label="character", description="Voice")
    return card


def finished_call(client, *, number: str, from_number: str, seconds: float, end_reason: str = "caller_hung_up",
                  turns: list[dict] | None = None, tts_characters: int = 0, error: str = "",
                  days_ago: int = 0) -> Call:
    """An answered inbound call that ran `seconds`, with its turns and usage shipped to the ledger."""
    if not PhoneNumber.objects.filter(number=number).exists():
        PhoneNumber.objects.create(number=number, agent=make_agent(), carrier="twilio", account_sid="AC1",
                                   auth_token="t")
    call = call_create_inbound(to_number=number, from_number=from_number,
                               carrier_call_id=f"CA-{from_number}-{timezone.now().timestamp()}")
    call = call_answered(call_id=call.pk, stream_id="MZ1")
    for turn in turns or []:
        call_turn_record(call_id=call.pk, turn=turn)
    usage = {"call_seconds": seconds}
    if tts_characters:
        usage["tts_characters"] = {"en_US-joe-medium": tts_characters}
    call = call_end(call_id=call.pk, end_reason=end_reason, error=error, usage=usage)
    call_usage_ship(client=client, call_id=call.pk)
    if days_ago:
        moved = timezone.now() - timedelta(days=days_ago)
        Call.objects.filter(pk=call.pk).update(created_at=moved)
    return Call.objects.get(pk=call.pk)


def turn(index: int, *, at, said: str, answered: str, v2v: int, stt: int = 150, llm: int = 300, tts: int = 100,
         length_ms: int = 3000) -> dict:
    return {"index": index, "user_text": said, "bot_text": answered, "started_at": at.isoformat(),
            "ended_at": (at + timedelta(milliseconds=length_ms)).isoformat(), "stt_final_ms": stt,
            "llm_ttft_ms": llm, "tts_ttfb_ms": tts, "voice_to_voice_ms": v2v}
