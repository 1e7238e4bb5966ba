"""/api/v1/knowledge: this client's knowledge base: documents (upload, add a URL, list with
status and progress, re-index, delete) and search."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from ninja import File, Router
from ninja.files import UploadedFile
from ninja.pagination import LimitOffsetPagination, paginate

from apps.core.errors import ApplicationError
from apps.knowledge.extract import MAX_UPLOAD_BYTES
from apps.knowledge.schemas import DocumentOut, SearchOut, UploadOut, UrlIn
from apps.knowledge.selectors import DEFAULT_TOP_K, document_get, document_list, knowledge_search
from apps.knowledge.services import document_add_url, document_delete, document_reindex, document_upload

router = Router(tags=["knowledge"])


@router.get("/documents", response=list[DocumentOut])
@paginate(LimitOffsetPagination)
def documents_list(request):
    return document_list()


@router.post("/documents", response={200: UploadOut, 201: UploadOut})
def documents_upload(request, file: UploadedFile = File(...)):
    """Upload a .txt, .md, .html or .pdf (multipart field `file`, at most 20 MB). The same name again replaces
    the document's passages (201); the same bytes again change nothing (200, `changed: false`). Processing runs
    in the background: poll the document for `status` and `progress`."""
    if file.size and file.size > MAX_UPLOAD_BYTES:
        raise ApplicationError(f"{file.name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, the limit.",
                               status_code=413)
    outcome = document_upload(name=file.name or "", data=file.read())
    return (201 if outcome.changed else 200), outcome


@router.post("/documents/url", response={202: DocumentOut})
def documents_add_url(request, payload: UrlIn):
    """Add a web page (or fetch one again): fetched and processed in the background."""
    return 202, document_add_url(url=payload.url)


@router.get("/documents/{int:document_id}", response=DocumentOut)
def documents_get(request, document_id: int):
    return document_get(document_id=document_id)


@router.post("/documents/{int:document_id}/reindex", response={202: DocumentOut})
def documents_reindex(request, document_id: int):
    return 202, document_reindex(document_id=document_id)


@router.delete("/documents/{int:document_id}", response={204: None})
def documents_delete(request, document_id: int):
    document_delete(document_id=document_id)
    return 204, None


@router.get("/search", response=SearchOut)
def knowledge_search_endpoint(request, q: str, top_k: int = DEFAULT_TOP_K):
    """The passages nearest to `q`, best first, each with its source document and position."""
    result = knowledge_search(query=q, top_k=top_k)
    return {"query": result.query, "embedding_model": result.embedding_model,
            "passages": [passage.as_dict() for passage in result.passages]}
