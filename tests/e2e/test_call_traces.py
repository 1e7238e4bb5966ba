"""A whole call through real daphne exports its spans over OTLP/HTTP to a local receiver
the test starts: the agency's collector (OTEL_EXPORTER_OTLP_* in daphne's environment)
and the client's Langfuse project (Basic auth of its key pair), each the same tree
call → turn → stt / llm / tts / tool, with the Turn rows' latencies on the turn spans;
the trace id and the Langfuse link are on the Call and its portal page."""
from __future__ import annotations

import base64

import pytest
from django.test import Client as BrowserClient

from conftest import child_env_for_test_database, run_daphne
from devtools.doubles.otlp_receiver import OtlpReceiver

from .test_inbound_calls import _simulate, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

LANGFUSE_PATH = "/api/public/otel/v1/traces"
COLLECTOR_PATH = "/collector/v1/traces"


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def traced_voice_server(django_db_setup, django_db_blocker, twilio_rest, carrier_rest, receiver, tmp_path_factory):
    """daphne as in conftest's voice_server, with the agency's OTLP collector configured."""
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    env.update(VOICE_PROVIDER_TIMEOUT_SECS="3", TWILIO_API_BASE_URL=twilio_rest.url, LOG_LEVEL="WARNING",
               OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url + "/collector",
               OTEL_EXPORTER_OTLP_HEADERS="x-agency=switchboard,x-scope=all%20calls")
    with run_daphne(env, tmp_path_factory.mktemp("daphne-traced") / "daphne.log") as server:
        yield server


def test_db_exists(db):
    """Makes pytest-django create the test database when only this module runs."""


@pytest.fixture
def acme_langfuse(committed_db, receiver):
    from apps.observability.models import LangfuseProject
    from apps.tenancy.models import Client

    project = LangfuseProject.objects.create(client=Client.objects.get(slug="acme"), host=receiver.url + "/",
                                             public_key="pk-lf-acme", secret_key="sk-lf-acme")
    yield project
    project.delete()


def _tree(spans):
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    return by_name


def test_a_traced_call_reaches_the_collector_and_the_clients_langfuse(
        acme_line, acme_langfuse, llm, traced_voice_server, receiver):
    tenant = acme_line(tools=["end_call"], vad_stop_secs=0.5)
    result = _simulate(traced_voice_server, "hello.wav", "thanks-bye.wav", hang_up=False)
    call = _wait_ended(tenant, result.call_id)
    assert (call.end_reason, call.error) == ("agent_ended", "")
    assert call.trace_id == call.pk.hex
    assert call.trace_url == f"{receiver.url}/trace/{call.pk.hex}"

    def both_have_the_call(spans):
        return {span.path for span in spans if span.name == "call" and span.trace_id == call.trace_id} == {
            LANGFUSE_PATH, COLLECTOR_PATH}

    spans = [span for span in receiver.wait_for(both_have_the_call) if span.trace_id == call.trace_id]
    collector = [span for span in spans if span.path == COLLECTOR_PATH]
    langfuse = [span for span in spans if span.path == LANGFUSE_PATH]
    # The same spans went to both, each with its own headers.
    assert sorted(span.span_id for span in collector) == sorted(span.span_id for span in langfuse)
    assert {span.headers["x-agency"] for span in collector} == {"switchboard"}
    assert {span.headers["x-scope"] for span in collector} == {"all calls"}
    assert "authorization" not in collector[0].headers
    expected_auth = "Basic " + base64.b64encode(b"pk-lf-acme:sk-lf-acme").decode()
    assert {span.headers["authorization"] for span in langfuse} == {expected_auth}

    tree = _tree(collector)
    [root] = tree["call"]
    assert root.parent_span_id == ""
    assert root.attributes["call.id"] == str(call.pk) and root.attributes["client"] == "acme"
    assert root.attributes["call.direction"] == "inbound" and root.attributes["call.end_reason"] == "agent_ended"
    assert root.resource["service.name"] == "switchboard"

    turns = sorted(tree["turn"], key=lambda span: span.attributes["turn.index"])
    assert [span.parent_span_id for span in turns] == [root.span_id] * 3
    assert [span.attributes["turn.index"] for span in turns] == [row.index for row in call.turn_rows] == [0, 1, 2]
    for span, row in zip(turns, call.turn_rows, strict=True):
        for key in ("stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
            assert span.attributes.get(f"turn.{key}") == getattr(row, key), (row.index, key)
        assert span.attributes.get("turn.user_text", "") == row.user_text
    assert turns[1].attributes["turn.user_text"] == "Hello, who is this?"
    assert isinstance(turns[1].attributes["turn.voice_to_voice_ms"], int)

    def under(turn, name):
        return [span for span in tree.get(name, []) if span.parent_span_id == turn.span_id]

    greeting, reply, goodbye = turns
    assert [span.attributes["text"] for span in under(greeting, "tts")] == ["Hi, Acme Dental here."]
    assert [span.attributes["transcript"] for span in under(reply, "stt")] == ["Hello, who is this?"]
    assert [span.attributes["gen_ai.request.model"] for span in under(reply, "llm")] == ["gpt-4o-mini"]
    assert [span.attributes["text"] for span in under(reply, "tts")] == ["This is Acme Dental."]
    [tool] = under(goodbye, "tool")
    [tool_row] = call.tool_rows
    assert (tool.attributes["tool.name"], tool.attributes["tool.duration_ms"]) == ("end_call", tool_row.duration_ms)
    ids = {span.span_id for span in collector}
    assert all(span.parent_span_id in ids for span in collector if span is not root)

    # The call page links to the trace in Langfuse.
    from apps.accounts.models import User

    browser = BrowserClient()
    browser.force_login(User.objects.get(email="admin@acme.test"))
    page = browser.get(f"/calls/{call.pk}/", HTTP_HOST="acme.localhost").content.decode()
    assert f'href="{receiver.url}/trace/{call.pk.hex}"' in page and "Open in Langfuse" in page


def test_a_client_without_langfuse_goes_to_the_collector_only(acme_line, llm, traced_voice_server, receiver):
    tenant = acme_line(vad_stop_secs=0.5)
    result = _simulate(traced_voice_server, "hello.wav")
    call = _wait_ended(tenant, result.call_id)
    assert (call.trace_id, call.trace_url) == (call.pk.hex, "")
    spans = receiver.wait_for(lambda spans: any(span.name == "call" and span.trace_id == call.trace_id
                                                for span in spans))
    mine = [span for span in spans if span.trace_id == call.trace_id]
    assert {span.path for span in mine} == {COLLECTOR_PATH}
    assert sorted(span.attributes["turn.index"] for span in mine if span.name == "turn") == [0, 1]
