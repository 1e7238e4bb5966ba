"""The knowledge base in the portal (upload, list with progress, search box, delete; viewers
read only), the API (upload, list, search, delete) and the call page's passages."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from apps.api.services import api_key_create
from apps.knowledge.models import Chunk, Document
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def eager(celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        yield callbacks


def test_an_admin_uploads_searches_and_deletes_in_the_portal(client, acme_admin, tenant_a, celery_eager,  # noqa: F811
                                                               django_capture_on_commit_callbacks, faq_text):
    client.force_login(acme_admin)
    page = client.get("/knowledge/", **HOST)
    assert page.status_code == 200 and b"No documents yet." in page.content
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/knowledge/upload/", {"file": SimpleUploadedFile("faq.txt", faq_text.encode())}, **HOST)
    assert (answer.status_code, answer["Location"]) == (302, "/knowledge/")
    with tenant_context(tenant_a):
        document = Document.objects.get(name="faq.txt")
        assert (document.status, document.progress) == ("ready", 100)

    page = client.get("/knowledge/", {"q": "Do I need to complete my KYC before opening the account?"}, **HOST)
    text = page.content.decode()
    assert "faq.txt is being processed." in text
    first = text.index("<ol class=\"passages\">")
    assert "complete KYC" in text[first:text.index("</li>", first)]

    progress = client.get("/knowledge/progress/", **HOST).json()
    assert progress == {"documents": [{"id": document.pk, "status": "ready", "status_label": "Ready", "progress": 100,
                                       "chunks": document.chunk_count, "error": ""}]}
    detail = client.get(f"/knowledge/{document.pk}/", **HOST)
    assert detail.status_code == 200 and b"complete KYC" in detail.content

    refused = client.post("/knowledge/upload/", {"file": SimpleUploadedFile("faq.exe", b"MZ")}, follow=True, **HOST)
    assert "&#x27;faq.exe&#x27; is not a file the knowledge base reads" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.post(f"/knowledge/{document.pk}/delete/", **HOST)
    assert deleted.status_code == 302
    with tenant_context(tenant_a):
        assert (Document.objects.count(), Chunk.objects.count()) == (0, 0)


def test_viewers_search_but_cannot_change_anything(client, acme_viewer, kb, tenant_a):  # noqa: F811
    client.force_login(acme_viewer)
    page = client.get("/knowledge/", {"q": "When are branches open on Saturday?"}, **HOST)
    assert page.status_code == 200 and b"Saturday from 10 am to 2 pm" in page.content
    assert b"Upload" not in page.content
    assert client.post("/knowledge/upload/", {"file": SimpleUploadedFile("x.txt", b"x")}, **HOST).status_code == 403
    assert client.post(f"/knowledge/{kb.pk}/delete/", **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert Document.objects.count() == 1


def test_the_api_uploads_lists_searches_and_deletes(client, tenant_a, celery_eager, django_capture_on_commit_callbacks,
                                                    faq_text):
    with tenant_context(tenant_a):
        token = api_key_create(name="KB sync")[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", **HOST}
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/knowledge/documents", {"file": SimpleUploadedFile("faq.md", faq_text.encode())},
                              **auth)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["changed"], body["document"]["name"], body["document"]["status"]) == (True, "faq.md", "pending")
    again = client.post("/api/v1/knowledge/documents", {"file": SimpleUploadedFile("faq.md", faq_text.encode())}, **auth)
    assert (again.status_code, again.json()["changed"]) == (200, False)

    listed = client.get("/api/v1/knowledge/documents", **auth).json()
    assert [(item["name"], item["status"], item["progress"], item["format"]) for item in listed["items"]] == [
        ("faq.md", "ready", 100, "md")]
    found = client.get("/api/v1/knowledge/search", {"q": "What does an arranged overdraft cost?", "top_k": 2}, **auth)
    assert found.status_code == 200
    result = found.json()
    assert result["embedding_model"] == "wordllama:l2_supercat_256" and len(result["passages"]) == 2
    assert result["passages"][0]["source"] == "faq.md" and "19.9 percent APR" in result["passages"][0]["text"]

    bad = client.get("/api/v1/knowledge/search", {"q": "   "}, **auth)
    assert (bad.status_code, bad.json()["error"]) == (400, "Ask a question or give some words to search for.")
    bad = client.get("/api/v1/knowledge/search", {"q": "fees", "top_k": 99}, **auth)
    assert (bad.status_code, bad.json()["error"]) == (400, "top_k must be between 1 and 20.")
    bad = client.post("/api/v1/knowledge/documents/url", json.dumps({"url": "file:///etc/passwd"}),
                      content_type="application/json", **auth)
    assert bad.status_code == 400
    document_id = listed["items"][0]["id"]
    assert client.delete(f"/api/v1/knowledge/documents/{document_id}", **auth).status_code == 204
    assert client.get(f"/api/v1/knowledge/documents/{document_id}", **auth).status_code == 404


def test_the_call_page_shows_the_passages_a_search_used(client, acme_admin, tenant_a, kb):  # noqa: F811
    from apps.calls.models import Call
    from apps.calls.services import call_turn_record
    from apps.telephony.tests.conftest import make_agent

    trace = {"query": "KYC?", "passages": [{"source": "faq.txt", "position": 0, "page": None, "score": 0.81,
                                            "chunk_id": 1, "text": "Opening an account. Before we can open"}]}
    with tenant_context(tenant_a):
        agent = make_agent()
        call = Call.objects.create(direction="inbound", from_number="+15550000001", to_number="+15550001000",
                                   carrier="twilio", agent=agent, agent_version=agent.current_version)
        call_turn_record(call_id=call.pk, turn={"index": 1, "user_text": "KYC?", "bot_text": "Yes.", "tool_calls": [
            {"name": "search_knowledge_base", "arguments": {"query": "KYC?"}, "result": json.dumps(trace),
             "duration_ms": 12}]})
    client.force_login(acme_admin)
    page = client.get(f"/calls/{call.pk}/", **HOST).content.decode()
    assert "📄 faq.txt · passage 0 · score 0.81: “Opening an account. Before we can open”" in page
