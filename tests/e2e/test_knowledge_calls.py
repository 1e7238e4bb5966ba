"""A caller asks a question the client's knowledge base answers, through real daphne: the
Twilio webhook, the media websocket, STT/LLM/TTS on the OpenAI double, the LLM calling
`search_knowledge_base`, the search in acme's schema (pgvector, offline wordllama
embeddings) on the call database pool, and the trace: which passages the agent got."""
from __future__ import annotations

import json

import pytest
from django_tenants.utils import tenant_context

from .test_inbound_calls import _simulate, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

FAQ = """Acme Bank customer FAQ

Opening an account. Before we can open any account you must complete KYC, our know-your-customer identity check: \
upload a photo ID and a proof of address in the app. Accounts are opened within one business day after KYC is approved.

Branch opening hours. Our branches are open Monday to Friday from 9 am to 5 pm and on Saturday from 10 am to 2 pm.

Lost or stolen cards. If your card is lost or stolen, freeze it at once in the app under Cards, then call the 24-hour \
card line. A replacement card arrives by post within five working days.
"""


@pytest.fixture
def acme_kb(committed_db, celery_eager):
    """faq.txt in acme's knowledge base, indexed (committed: daphne must see it)."""
    from apps.knowledge.models import Document
    from apps.knowledge.services import document_upload
    from apps.tenancy.models import Client

    tenant = Client.objects.get(slug="acme")
    with tenant_context(tenant):
        document_upload(name="faq.txt", data=FAQ.encode())  # committed at once; the task runs eagerly
        document = Document.objects.get(name="faq.txt")
        assert (document.status, document.error) == ("ready", "")
    yield document
    with tenant_context(tenant):
        Document.objects.all().delete()


def test_a_caller_question_is_answered_from_the_knowledge_base(acme_kb, acme_line, llm, voice_server):
    from apps.calls.models import Call
    from apps.knowledge.models import Chunk
    from devtools.doubles.openai_server import Rule

    tenant = acme_line(vad_stop_secs=0.5, tools=["search_knowledge_base", "end_call"])
    llm.rules[:] = [Rule(when="KYC", tool="search_knowledge_base",
                         arguments={"query": "Do I need to complete KYC before opening an account?"})]
    llm.after_tool_reply = "Yes: complete KYC first, then we open the account within a day."
    try:
        result = _simulate(voice_server, "kyc-question.wav")
        call = _wait_ended(tenant, result.call_id, timeout=45)  # 2 shared cores: be patient
    finally:
        llm.after_tool_reply = ""

    with tenant_context(tenant):
        answer_chunk = Chunk.objects.get(document=acme_kb, text__contains="complete KYC")
    assert (call.end_reason, call.error) == (Call.EndReason.CALLER_HUNG_UP, "")
    assert [(t.index, t.user_text, t.bot_text) for t in call.turn_rows] == [
        (0, "", "Hi, Acme Dental here."),
        (1, "Do I need to complete my KYC before opening the account?",
         "Yes: complete KYC first, then we open the account within a day."),
    ]
    [tool] = call.tool_rows
    assert (tool.name, tool.arguments, tool.error, tool.turn_id) == (
        "search_knowledge_base", {"query": "Do I need to complete KYC before opening an account?"}, "",
        call.turn_rows[1].id)
    assert isinstance(tool.duration_ms, int)
    trace = json.loads(tool.result)
    assert trace["query"] == "Do I need to complete KYC before opening an account?"
    best = trace["passages"][0]
    assert (best["source"], best["position"], best["chunk_id"]) == ("faq.txt", answer_chunk.position, answer_chunk.pk)
    assert best["text"] == answer_chunk.text[:160]
    # The LLM was asked again with the passage as the tool's answer.
    [after] = [request for request in llm.requests_of("chat") if request["after_tool"]]
    tool_message = json.loads(after["messages"][-1]["content"])
    assert tool_message["passages"][0] == {"source": "faq.txt", "position": answer_chunk.position,
                                           "text": answer_chunk.text}
    [first] = [request for request in llm.requests_of("chat") if not request["after_tool"]]
    assert "search_knowledge_base" in first["tools"]
