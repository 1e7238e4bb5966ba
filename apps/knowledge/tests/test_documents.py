"""Documents in and out: re-uploads (unchanged: nothing; changed: passages replaced at once),
PDF/HTML/URL extraction, refusals that change nothing, a stale task, another embeddings
provider (OpenAI-compatible, on the double), the HNSW index, client isolation."""
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.core.errors import ApplicationError
from apps.knowledge.extract import fetch_url, html_to_text
from apps.knowledge.models import Chunk, Document
from apps.knowledge.selectors import knowledge_search
from apps.knowledge.services import (
    document_add_url,
    document_process,
    document_upload,
    knowledge_settings_save,
)
from apps.tenancy.models import AuditLogEntry


def upload(name, data):
    from django.test.utils import CaptureQueriesContext  # noqa: F401  (keeps the import local)

    return document_upload(name=name, data=data)


@pytest.fixture
def run_tasks(celery_eager, django_capture_on_commit_callbacks):
    """Run what the services enqueue on commit, at once."""
    def run(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            result = function(**kwargs)
        return result, callbacks

    return run


def test_an_unchanged_reupload_does_nothing_and_a_changed_one_replaces_the_passages(kb, tenant_a, run_tasks, faq_text):
    with tenant_context(tenant_a):
        before = list(Chunk.objects.filter(document=kb).values_list("pk", flat=True))
        outcome, callbacks = run_tasks(document_upload, name="faq.txt", data=faq_text.encode())
        assert (outcome.changed, len(callbacks)) == (False, 0)
        kb.refresh_from_db()
        assert (kb.generation, kb.status) == (1, "ready")
        assert list(Chunk.objects.filter(document=kb).values_list("pk", flat=True)) == before

        changed = faq_text.replace("flat fee of 12 dollars", "flat fee of 15 dollars")
        outcome, callbacks = run_tasks(document_upload, name="faq.txt", data=changed.encode())
        assert (outcome.changed, len(callbacks)) == (True, 2)  # the old file's removal, the task
        kb.refresh_from_db()
        assert (kb.generation, kb.status, kb.progress, Document.objects.count()) == (2, "ready", 100, 1)
        texts = list(Chunk.objects.filter(document=kb).values_list("text", flat=True))
        assert any("15 dollars" in text for text in texts) and not any("12 dollars" in text for text in texts)
        assert not Chunk.objects.filter(pk__in=before).exists()
        best = knowledge_search(query="How much does an international transfer cost?", top_k=1).passages[0]
        assert "flat fee of 15 dollars" in best.text
        assert list(AuditLogEntry.objects.filter(client=tenant_a, target_type="knowledge.document",
                                                             target_id=str(kb.pk))
                    .values_list("event_type", flat=True)) == ["knowledge_document_added", "knowledge_document_added"]


def test_a_task_for_an_older_generation_changes_nothing(kb, tenant_a, run_tasks, faq_text):
    with tenant_context(tenant_a):
        chunks = Chunk.objects.filter(document=kb).count()
        assert document_process(document_id=kb.pk, generation=kb.generation) == "unchanged"  # ran twice
        assert document_process(document_id=kb.pk, generation=kb.generation + 7) == "stale"
        assert document_process(document_id=kb.pk + 1000, generation=1) == "gone"
        assert Chunk.objects.filter(document=kb).count() == chunks


@pytest.mark.parametrize(("name", "data", "message"), [
    ("notes.docx", b"PK...", "'notes.docx' is not a file the knowledge base reads: upload .txt, .md, .html or .pdf."),
    ("empty.txt", b"", "empty.txt is empty."),
])
def test_unreadable_uploads_are_refused_and_nothing_is_stored(tenant_a, run_tasks, name, data, message):
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as error:
            run_tasks(document_upload, name=name, data=data)
        assert error.value.message == message
        assert Document.objects.count() == 0


def test_a_file_without_text_fails_with_the_reason_and_keeps_nothing(tenant_a, run_tasks):
    with tenant_context(tenant_a):
        outcome, _ = run_tasks(document_upload, name="blank.md", data=b"   \n\n  ")
        outcome.document.refresh_from_db()
        assert (outcome.document.status, outcome.document.error, outcome.document.chunk_count) == (
            "failed", "The document holds no text.", 0)


def _pdf(pages: list[str]) -> bytes:
    from weasyprint import HTML

    body = "".join(f'<p style="page-break-after: always">{text}</p>' for text in pages)
    return HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def test_a_pdf_is_read_page_by_page(tenant_a, run_tasks):
    filler = " ".join(f"Branch rule {n} covers ordinary matters of daily business." for n in range(12))
    data = _pdf([f"Parking is free for customers in the garage behind the branch. {filler}",
                 f"Safe deposit boxes can be rented for 80 dollars a year at larger branches. {filler}"])
    with tenant_context(tenant_a):
        outcome, _ = run_tasks(document_upload, name="Branch guide.pdf", data=data)
        document = Document.objects.get(pk=outcome.document.pk)
        assert (document.status, document.format, document.error) == ("ready", "pdf", "")
        best = knowledge_search(query="How much is a safe deposit box?", top_k=1).passages[0]
        assert (best.source, best.page) == ("Branch guide.pdf", 2)
        assert "80 dollars a year" in best.text


def test_a_broken_pdf_fails_with_a_clear_error(tenant_a, run_tasks):
    with tenant_context(tenant_a):
        outcome, _ = run_tasks(document_upload, name="broken.pdf", data=b"%PDF-1.4 not really")
        document = Document.objects.get(pk=outcome.document.pk)
        assert document.status == "failed"
        assert document.error.startswith("This PDF could not be read (")
        assert Chunk.objects.count() == 0


def test_html_to_text_keeps_the_content_and_drops_the_chrome():
    html = """<!doctype html><html><head><title>Fees</title><style>p{color:red}</style></head><body>
      <nav><a href="/">Home</a> <a href="/x">Menu item</a></nav>
      <h1>Account fees</h1><p>The monthly fee is <b>4 dollars</b>,<br>waived for students.</p>
      <script>var tracking = 1;</script><table><tr><td>Card</td><td>free</td></tr></table>
      <footer>Copyright</footer></body></html>"""
    assert html_to_text(html) == "Fees\n\nAccount fees\n\nThe monthly fee is 4 dollars,\nwaived for students.\n\nCard free"


class _Site(BaseHTTPRequestHandler):
    pages = {
        "/faq.html": ("text/html; charset=utf-8", b"<html><body><h1>Pets</h1><p>Dogs are welcome in every branch "
                                                  b"if they are on a leash.</p></body></html>"),
        "/big.txt": ("text/plain", b"x" * 5000),
        "/image.png": ("image/png", b"\x89PNG...."),
    }

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path == "/slow":
            import time

            time.sleep(2)
        kind, body = self.pages.get(self.path, ("text/plain", None))
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_web_page_is_fetched_and_indexed(tenant_a, run_tasks, site):
    with tenant_context(tenant_a):
        document, _ = run_tasks(document_add_url, url=f"{site}/faq.html")
        document.refresh_from_db()
        assert (document.name, document.source, document.format, document.status) == (
            f"{site}/faq.html", "url", "html", "ready")
        best = knowledge_search(query="Can I bring my dog?", top_k=1).passages[0]
        assert (best.source, best.text) == (f"{site}/faq.html", "Pets\n\nDogs are welcome in every branch if they are "
                                                                 "on a leash.")
        # Fetched again with the same content: nothing changes.
        chunk_ids = list(Chunk.objects.values_list("pk", flat=True))
        document, _ = run_tasks(document_add_url, url=f"{site}/faq.html")
        document.refresh_from_db()
        assert (document.status, document.generation, list(Chunk.objects.values_list("pk", flat=True))) == (
            "ready", 2, chunk_ids)


def test_web_page_failures_say_what_happened(tenant_a, run_tasks, site):
    with tenant_context(tenant_a):
        missing, _ = run_tasks(document_add_url, url=f"{site}/gone.html")
        missing.refresh_from_db()
        assert (missing.status, missing.error) == ("failed", f"{site}/gone.html answered HTTP 404.")
        image, _ = run_tasks(document_add_url, url=f"{site}/image.png")
        image.refresh_from_db()
        assert (image.status, image.error) == ("failed", f"{site}/image.png answered with image/png, which the "
                                               "knowledge base does not read (HTML, text, Markdown or PDF).")
    with pytest.raises(ApplicationError) as error:
        fetch_url(f"{site}/big.txt", max_bytes=1000)
    assert error.value.message == f"{site}/big.txt is 4 KB; the limit is 0 KB."
    with pytest.raises(ApplicationError) as error:
        fetch_url(f"{site}/slow", timeout_secs=0.5)
    assert error.value.message == f"{site}/slow did not answer within 0.5 seconds."


def test_private_addresses_are_refused_unless_allowed(tenant_a, settings):
    settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS = False
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as error:
            document_add_url(url="http://127.0.0.1:9/secret")
        assert "private" in error.value.message or "loopback" in error.value.message
        with pytest.raises(ApplicationError) as error:
            document_add_url(url="ftp://example.com/file.txt")
        assert Document.objects.count() == 0


def test_openai_compatible_embeddings_through_the_double_and_the_hnsw_index(kb, tenant_a, run_tasks):
    from apps.providers.models import ProviderAccount
    from devtools.doubles.openai_server import OpenAIDouble

    with OpenAIDouble() as double, tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as error:
            knowledge_settings_save(embedding_provider="openai_compatible",
                                    embedding_settings={"model": "text-embedding-3-small"})
        assert error.value.message.startswith("No OpenAI-compatible server credential is configured")
        ProviderAccount.objects.create(provider="openai_compatible", api_key="emb-key", base_url=double.base_url)
        run_tasks(knowledge_settings_save, embedding_provider="openai_compatible",
                  embedding_settings={"model": "text-embedding-3-small"})
        kb.refresh_from_db()
        assert (kb.status, kb.embedding_model, kb.generation) == (
            "ready", "openai_compatible:text-embedding-3-small", 2)
        assert set(Chunk.objects.values_list("dimensions", "embedding_model")) == {
            (1536, "openai_compatible:text-embedding-3-small")}
        requests = double.requests_of("embeddings")
        assert [(r["model"], r["api_key"], r["dimensions"]) for r in requests] == [
            ("text-embedding-3-small", "emb-key", 1536)]
        # The bag-of-words double still finds the passage sharing the question's words.
        best = knowledge_search(query="Are the branches open on Saturday?", top_k=1).passages[0]
        assert "Saturday from 10 am to 2 pm" in best.text

        with connection.cursor() as cursor:  # the search's expression is the index's
            cursor.execute("SET LOCAL enable_seqscan = off")
            queryset = (Chunk.objects.filter(dimensions=1536, embedding_model="x")
                        .annotate(distance=_distance(1536)).order_by("distance")[:3])
            plan = queryset.explain()
            cursor.execute("RESET enable_seqscan")
        assert "knowledge_chunk_hnsw_1536" in plan


def _distance(dimensions):
    from django.db.models.functions import Cast
    from pgvector.django import CosineDistance, VectorField

    return CosineDistance(Cast("embedding", VectorField(dimensions=dimensions)), [0.1] * dimensions)


def test_clients_do_not_see_each_others_documents(kb, tenant_b):
    with tenant_context(tenant_b):
        assert Document.objects.count() == 0
        assert knowledge_search(query="Do I need KYC to open an account?").passages == []


def test_the_upload_limit_is_checked_before_anything_is_stored(tenant_a, monkeypatch):
    from apps.knowledge import extract

    monkeypatch.setattr(extract, "MAX_UPLOAD_BYTES", 10)
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as error:
            document_upload(name="long.txt", data=io.BytesIO(b"x" * 11).read())
        assert error.value.message == "long.txt is 0 MB; the limit is 0 MB."
        assert Document.objects.count() == 0
