"""Client portal: the knowledge base (list with progress, upload, add a URL, delete,
re-index, try a search, choose the embeddings). Doors over apps.knowledge.services and
selectors."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.knowledge.forms import SearchForm, SettingsForm, UploadForm, UrlForm
from apps.knowledge.selectors import (
    document_chunks,
    document_get,
    document_list,
    knowledge_search,
    knowledge_settings_get,
)
from apps.knowledge.services import (
    document_add_url,
    document_delete,
    document_reindex,
    document_upload,
    knowledge_settings_save,
)
from apps.portal.access import portal_login_required


def _list_url():
    return reverse("portal:knowledge:list")


@portal_login_required
def knowledge_list_view(request):
    settings = knowledge_settings_get()
    search_form, result, search_error = SearchForm(request.GET or None), None, ""
    if request.GET.get("q") and search_form.is_valid():
        try:
            result = knowledge_search(query=search_form.cleaned_data["q"], top_k=5)
        except ApplicationError as error:
            search_error = error.message
    documents = list(document_list())
    return render(request, "knowledge/knowledge_list.html", {
        "documents": documents, "upload_form": UploadForm(), "url_form": UrlForm(), "search_form": search_form,
        "result": result, "search_error": search_error, "settings": settings,
        "settings_form": SettingsForm(initial={"embedding_provider": settings.embedding_provider,
                                               **(settings.embedding_settings or {})}),
        "busy": any(document.status in ("pending", "processing") for document in documents),
        "can_edit": request.user.can_edit_client_data(request.tenant),
    })


@portal_login_required
def knowledge_progress_view(request):
    """Status and progress of every document, for the list page to poll while work runs."""
    return JsonResponse({"documents": [
        {"id": document.pk, "status": document.status, "status_label": document.get_status_display(),
         "progress": document.progress, "chunks": document.chunk_count, "error": document.error}
        for document in document_list()]})


@portal_login_required(admin_only=True)
def knowledge_upload_view(request):
    if request.method != "POST":
        return HttpResponseRedirect(_list_url())  # the forms live on the list page
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to upload.")
        return HttpResponseRedirect(_list_url())
    upload = form.cleaned_data["file"]
    from apps.knowledge.extract import MAX_UPLOAD_BYTES

    if upload.size > MAX_UPLOAD_BYTES:
        messages.error(request, f"{upload.name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, the limit.")
        return HttpResponseRedirect(_list_url())
    try:
        outcome = document_upload(name=upload.name, data=upload.read())
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if outcome.changed:
            messages.success(request, f"{outcome.document.name} is being processed.")
        else:
            messages.info(request, f"{outcome.document.name} is unchanged: nothing to do.")
    return HttpResponseRedirect(_list_url())


@portal_login_required(admin_only=True)
def knowledge_add_url_view(request):
    if request.method != "POST":
        return HttpResponseRedirect(_list_url())  # the forms live on the list page
    form = UrlForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a full web address (https://...).")
        return HttpResponseRedirect(_list_url())
    try:
        document = document_add_url(url=form.cleaned_data["url"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{document.name} is being fetched and processed.")
    return HttpResponseRedirect(_list_url())


@require_POST
@portal_login_required(admin_only=True)
def knowledge_delete_view(request, document_id: int):
    try:
        document = document_get(document_id=document_id)
        document_delete(document_id=document.pk)
    except NotFound:
        raise Http404("No such document.") from None
    messages.success(request, f"{document.name} was deleted.")
    return HttpResponseRedirect(_list_url())


@require_POST
@portal_login_required(admin_only=True)
def knowledge_reindex_view(request, document_id: int):
    try:
        document = document_reindex(document_id=document_id)
    except NotFound:
        raise Http404("No such document.") from None
    messages.success(request, f"{document.name} is being processed again.")
    return HttpResponseRedirect(_list_url())


@portal_login_required
def knowledge_document_view(request, document_id: int):
    try:
        document = document_get(document_id=document_id)
    except NotFound:
        raise Http404("No such document.") from None
    return render(request, "knowledge/knowledge_document.html", {
        "document": document, "chunks": document_chunks(document_id=document.pk)[:500]})


@portal_login_required(admin_only=True)
def knowledge_settings_view(request):
    if request.method != "POST":
        return HttpResponseRedirect(_list_url())  # the forms live on the list page
    form = SettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
        return HttpResponseRedirect(_list_url())
    try:
        knowledge_settings_save(embedding_provider=form.cleaned_data["embedding_provider"],
                                embedding_settings=form.settings())
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Embeddings saved; documents embedded with another model are processed again.")
    return HttpResponseRedirect(_list_url())
