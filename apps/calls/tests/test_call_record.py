"""The call record written by the runtime's service calls."""
from datetime import UTC, datetime
from decimal import Decimal

from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from apps.billing.models import UsageEvent
from apps.calls.models import Call, CallUsage, ToolCall, Turn
from apps.calls.selectors import call_dashboard_figures
from apps.calls.services import call_answered, call_end, call_recording_save, call_turn_record

USAGE = {
    "call_seconds": 61.25,
    "stt_seconds": {"nova-2": 58.5},
    "llm_input_tokens": {"gpt-4o-mini": 900},
    "llm_output_tokens": {"gpt-4o-mini": 120},
    "tts_characters": {"en_US-joe-medium": 420},
}


def test_turns_and_tool_calls_are_rows(tenant_a, acme_call):
    with tenant_context(tenant_a):
        call_answered(call_id=acme_call.pk, stream_id="MZ123")
        call_turn_record(call_id=acme_call.pk, turn={
            "index": 0, "user_text": "I need to move my appointment", "bot_text": "Sure, let me connect you.",
            "started_at": "2026-01-05T10:00:00+00:00", "ended_at": "2026-01-05T10:00:04.5+00:00", "interrupted": True,
            "stt_final_ms": 180.4, "llm_ttft_ms": 320, "tts_ttfb_ms": 95, "voice_to_voice_ms": 710,
            "end_of_turn": "end_of_turn_model",
            "tool_calls": [{"name": "transfer_to_human", "arguments": {"reason": "reschedule"}, "result": "ok",
                            "duration_ms": 12, "error": None}],
            "errors": ["tts: slow first byte"],
        })
        turn = Turn.objects.get(call_id=acme_call.pk)
        assert (turn.index, turn.user_text, turn.interrupted, turn.stt_final_ms, turn.llm_ttft_ms, turn.tts_ttfb_ms,
                turn.voice_to_voice_ms, turn.errors) == (0, "I need to move my appointment", True, 180, 320, 95, 710,
                                                        "tts: slow first byte")
        assert turn.started_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        assert turn.end_of_turn == "end_of_turn_model"
        tool = ToolCall.objects.get()
        assert (tool.turn_id, tool.name, tool.arguments, tool.result, tool.duration_ms, tool.error) == (
            turn.pk, "transfer_to_human", {"reason": "reschedule"}, "ok", 12, "")


def test_call_end_is_idempotent_and_leaves_a_complete_record(tenant_a, acme_call, django_capture_on_commit_callbacks,
                                                             celery_eager):
    with tenant_context(tenant_a):
        call_answered(call_id=acme_call.pk, stream_id="MZ123")
        with django_capture_on_commit_callbacks(execute=True):
            first = call_end(call_id=acme_call.pk, end_reason="agent_ended", usage=USAGE)
        ended_at = first.ended_at
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            second = call_end(call_id=acme_call.pk, end_reason="error", error="late", usage={"stt_seconds": 999})
        assert callbacks == []
        call = Call.objects.get(pk=acme_call.pk)
        assert (call.status, call.end_reason, call.error, call.ended_at, call.duration_secs) == (
            "completed", "agent_ended", "", ended_at, Decimal("61.250"))
        assert second.end_reason == "agent_ended"
        rows = sorted(CallUsage.objects.filter(call=call).values_list("metric", "dimension", "provider", "quantity"))
        assert rows == [
            ("call_seconds_inbound", "", "twilio", Decimal("61.250")),
            ("carrier_seconds", "voice-inbound", "twilio", Decimal("61.250")),
            ("llm_input_tokens", "gpt-4o-mini", "", Decimal("900.000")),
            ("llm_output_tokens", "gpt-4o-mini", "", Decimal("120.000")),
            ("stt_seconds", "nova-2", "", Decimal("58.500")),
            ("tts_characters", "en_US-joe-medium", "", Decimal("420.000")),
        ]
    billed = sorted(UsageEvent.objects.filter(client=tenant_a, call_id=str(acme_call.pk)).values_list("metric", "dimension", "quantity"))
    assert billed == [
        ("call_seconds_inbound", "", Decimal("61.250")),
        ("carrier_seconds", "voice-inbound", Decimal("61.250")),
        ("llm_input_tokens", "gpt-4o-mini", Decimal("900.000")),
        ("llm_output_tokens", "gpt-4o-mini", Decimal("120.000")),
        ("stt_seconds", "nova-2", Decimal("58.500")),
        ("tts_characters", "en_US-joe-medium", Decimal("420.000")),
    ]


def test_recording_and_transcript_go_to_storage_under_the_schema(tenant_a, acme_call):
    with tenant_context(tenant_a):
        call = call_recording_save(call_id=acme_call.pk, wav_bytes=b"RIFF....WAVE", transcript="caller: hi\nagent: hello")
        assert call.recording.name == f"recordings/acme/{acme_call.pk}.wav"
        assert call.transcript.name == f"transcripts/acme/{acme_call.pk}.txt"
        with default_storage.open(call.recording.name) as handle:
            assert handle.read() == b"RIFF....WAVE"
        default_storage.delete(call.recording.name)
        default_storage.delete(call.transcript.name)


def test_dashboard_figures_count_this_tenants_calls(tenant_a, tenant_b, acme_call, globex_call):
    with tenant_context(tenant_a):
        assert call_dashboard_figures() == {"calls_total": 1}
