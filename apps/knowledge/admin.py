"""Client admin: the knowledge base's documents (uploads go through document_upload, so they
are processed like the portal's), their passages (read-only) and the embeddings choice."""
from django import forms
from django.contrib import admin, messages

from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError
from apps.knowledge.models import Chunk, Document, KnowledgeSettings
from apps.knowledge.services import document_delete, document_reindex, document_upload, knowledge_settings_save


class DocumentAdminForm(forms.ModelForm):
    upload = forms.FileField(required=False, help_text=".txt, .md, .html or .pdf; the same name replaces it.")

    class Meta:
        model = Document
        fields = ()

    def clean(self):
        data = super().clean()
        if not data.get("upload") and not self.instance.pk:
            raise forms.ValidationError("Choose a file to upload.")
        return data


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ("position", "page", "start_offset", "end_offset", "text", "embedding_model")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    show_change_link = False


@admin.register(Document, site=tenant_admin_site)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentAdminForm
    list_display = ("name", "source", "format", "status", "progress", "chunk_count", "embedding_model", "updated_at")
    list_filter = ("status", "source", "format")
    search_fields = ("name",)
    actions = ["reindex", "delete_documents"]
    inlines = [ChunkInline]
    readonly = ("name", "source", "url", "format", "size_bytes", "content_hash", "indexed_hash", "status",
                "progress", "error", "chunk_count", "embedding_model", "generation", "created_at", "updated_at",
                "processed_at")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly if obj else ()

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("upload")
        if not upload:
            return
        try:
            outcome = document_upload(name=upload.name, data=upload.read(), actor=request.user)
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = outcome.document.pk

    def save_related(self, request, form, formsets, change):
        pass  # chunks are written by the processing task only

    def delete_model(self, request, obj):
        document_delete(document_id=obj.pk, actor=request.user)

    @admin.action(description="Process again")
    def reindex(self, request, queryset):
        for document in queryset:
            document_reindex(document_id=document.pk)
        self.message_user(request, f"{queryset.count()} document(s) queued.")

    @admin.action(description="Delete documents and their passages")
    def delete_documents(self, request, queryset):
        count = 0
        for document in queryset:
            document_delete(document_id=document.pk, actor=request.user)
            count += 1
        self.message_user(request, f"{count} document(s) deleted.")


class KnowledgeSettingsAdminForm(forms.ModelForm):
    class Meta:
        model = KnowledgeSettings
        fields = ("embedding_provider", "embedding_settings")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        from apps.providers.registry import provider_config_validate

        try:
            provider_config_validate(kind="embeddings", provider=data.get("embedding_provider") or "",
                                     settings=data.get("embedding_settings") or {})
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return data


@admin.register(KnowledgeSettings, site=tenant_admin_site)
class KnowledgeSettingsAdmin(admin.ModelAdmin):
    form = KnowledgeSettingsAdminForm
    list_display = ("embedding_provider", "embedding_settings", "updated_at")

    def has_add_permission(self, request):
        return not KnowledgeSettings.objects.exists()

    def save_model(self, request, obj, form, change):
        saved = knowledge_settings_save(embedding_provider=form.cleaned_data["embedding_provider"],
                                        embedding_settings=form.cleaned_data.get("embedding_settings") or {},
                                        actor=request.user)
        obj.pk = saved.pk
