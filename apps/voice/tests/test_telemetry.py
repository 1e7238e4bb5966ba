"""Spans of a call (apps/voice/telemetry.py) reach a local OTLP/HTTP receiver: call →
turn → stt / llm / tts / tool, with the turn rows' latencies on the turn spans. The
production session, pipeline and Pipecat services run against the OpenAI double."""
from __future__ import annotations

import uuid

import pytest

from apps.voice import telemetry
from apps.voice.telemetry import CallTraceSettings, TraceDestination
from apps.voice.tests.test_session import double, finish, say, start_call  # noqa: F401 - the fixture
from devtools.doubles.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def receiver():
    with OtlpReceiver() as receiver:
        yield receiver


def _traced(receiver, call_id, *, headers=()):
    destination = TraceDestination(name="otlp", endpoint=receiver.url + "/v1/traces", headers=tuple(headers))
    return lambda index: CallTraceSettings(trace_id=telemetry.trace_id_for(call_id), destinations=(destination,),
                                           attributes={"call.id": str(call_id), "client": "acme"})


def _tree(spans, trace_id):
    mine = [span for span in spans if span.trace_id == trace_id]
    by_id = {span.span_id: span for span in mine}
    return mine, by_id


async def test_call_turn_and_service_spans_reach_the_collector(double, receiver):  # noqa: F811
    call_id = uuid.uuid4()
    server, caller = await start_call(double, greeting="Hi there!", tools=("end_call",),
                                      trace=_traced(receiver, call_id, headers=[("x-team", "ops")]))
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    utterance = await say(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=utterance.speech_end_at)
    await caller.wait_for_agent_quiet()
    await say(caller, "thanks-bye.wav")  # the end_call tool
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)
    assert telemetry.flush()

    spans = receiver.wait_for(lambda spans: any(span.name == "call" for span in spans))
    mine, by_id = _tree(spans, call_id.hex)
    assert len(mine) == len(spans)  # nothing else was routed there
    [call] = [span for span in mine if span.name == "call"]
    assert call.parent_span_id == ""
    assert call.attributes["call.id"] == str(call_id) and call.attributes["client"] == "acme"
    assert call.attributes["call.end_reason"] == "agent_ended"
    assert call.headers["x-team"] == "ops" and call.path == "/v1/traces"

    turns = sorted((span for span in mine if span.name == "turn"), key=lambda span: span.attributes["turn.index"])
    assert [span.parent_span_id for span in turns] == [call.span_id] * len(hooks.turns)
    # Each turn span carries exactly its Turn row's latencies and text.
    for span, row in zip(turns, hooks.turns, strict=True):
        assert span.attributes["turn.index"] == row["index"]
        for key in ("stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
            assert span.attributes.get(f"turn.{key}") == row[key], key
        assert span.attributes.get("turn.user_text", "") == row["user_text"]
        assert span.attributes.get("turn.bot_text", "") == row["bot_text"]
    greeting, reply, goodbye = turns
    assert (reply.attributes["turn.user_text"], reply.attributes["turn.bot_text"]) == (
        "Hello, who is this?", "This is Acme Dental.")
    assert reply.attributes["turn.voice_to_voice_ms"] > 0

    def children(turn, name):
        return [span for span in mine if span.parent_span_id == turn.span_id and span.name == name]

    # Pipecat's service spans hang under the turn they served.
    assert [s.attributes["text"] for s in children(greeting, "tts")] == ["Hi there!"]
    assert children(greeting, "stt") == [] and children(greeting, "llm") == []
    [stt] = children(reply, "stt")
    assert stt.attributes["transcript"] == "Hello, who is this?"
    assert stt.attributes["gen_ai.request.model"] == "whisper-1"
    [llm] = children(reply, "llm")
    assert llm.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert [s.attributes["text"] for s in children(reply, "tts")] == ["This is Acme Dental."]
    [stt_bye] = children(goodbye, "stt")
    assert stt_bye.attributes["transcript"] == "Thank you, that is all. Goodbye."
    [tool] = children(goodbye, "tool")
    assert tool.attributes["tool.name"] == "end_call"
    assert tool.attributes["tool.duration_ms"] == hooks.turns[2]["tool_calls"][0]["duration_ms"]
    # Every span of the call sits in the one tree under the call span.
    for span in mine:
        if span is not call:
            assert span.parent_span_id in by_id, span.name


async def test_an_untraced_call_makes_no_spans(double, receiver):  # noqa: F811
    server, caller = await start_call(double, greeting="Hi there!")
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)
    session = server.bridges[0].session
    assert session.telemetry is None and session.worker._tracing_context is None
    assert [turn["index"] for turn in hooks.turns] == [0]
    assert telemetry.flush()
    assert receiver.received() == []
