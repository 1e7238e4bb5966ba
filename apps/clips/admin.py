"""Client admin: the clip library. Adding uploads through `clip_create` (normalised, checked);
a clip is not edited in place (delete it and upload again); deleting goes through `clip_delete`."""
from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.clips.models import CLIP_TAGS, Clip
from apps.clips.services import clip_create, clip_delete
from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError


class ClipUploadForm(forms.ModelForm):
    upload = forms.FileField(help_text="WAV or MP3, at most 30 s; stored as 8 kHz mono for the phone.")
    tag_list = forms.MultipleChoiceField(choices=[(tag, tag) for tag in CLIP_TAGS], required=False,
                                         widget=forms.CheckboxSelectMultiple, label="Tags")

    class Meta:
        model = Clip
        fields = ("name", "agent", "words", "interruptible")

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if self.errors or upload is None:
            return cleaned
        try:
            self.instance = clip_create(name=cleaned["name"], words=cleaned["words"], audio=upload.read(),
                                        filename=upload.name, tags=cleaned.get("tag_list") or [],
                                        interruptible=cleaned.get("interruptible", True), agent=cleaned.get("agent"))
        except ApplicationError as error:
            field = error.details.get("field")
            field = {"audio": "upload", "tags": "tag_list"}.get(field, field)
            self.add_error(field if field in self.fields else None, error.message)
        return cleaned


@admin.register(Clip, site=tenant_admin_site)
class ClipAdmin(admin.ModelAdmin):
    list_display = ("name", "agent", "words", "tags", "interruptible", "duration_ms", "created_at")
    list_filter = ("agent", "interruptible")
    search_fields = ("name", "words")
    readonly_fields = ("preview", "duration_ms", "original_name", "created_at")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ClipUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "agent", "words", "tag_list", "interruptible", "upload")
        return ("name", "agent", "words", "tags", "interruptible", "preview", "duration_ms", "original_name",
                "created_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "agent", "words", "tags", "interruptible", "preview", "duration_ms", "original_name",
                "created_at")

    @admin.display(description="Preview")
    def preview(self, obj):
        if not obj.audio:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio>', reverse("portal:clips:audio", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        pass  # the form's clean() stored it through clip_create

    def delete_model(self, request, obj):
        clip_delete(clip=obj)

    def delete_queryset(self, request, queryset):
        for clip in queryset:
            clip_delete(clip=clip)
