"""Knowledge base tasks: doors that take primitive ids and call one service; safe to run twice.

- `knowledge.process_document` (enqueued on commit by every upload, URL, refresh and
  re-index): one generation of a document into chunks. A retryable embeddings failure
  (429, 5xx, unreachable) is retried with backoff; then the document says it failed.
"""
from __future__ import annotations

from celery import shared_task

from apps.core.errors import ProviderError


@shared_task(name="knowledge.process_document", bind=True, max_retries=5)
def process_document(self, document_id: int, generation: int) -> str:
    from apps.knowledge.services import document_process, document_process_failed

    try:
        return document_process(document_id=document_id, generation=generation)
    except ProviderError as error:
        if error.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=min(300, 5 * 2 ** self.request.retries)) from error
        document_process_failed(document_id=document_id, generation=generation, message=error.message)
        return "failed"
