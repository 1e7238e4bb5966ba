"""Agency admin: Langfuse projects (the agency's own, and one per client that wants its calls there)."""
from django import forms
from django.contrib import admin

from apps.observability.models import LangfuseProject


class LangfuseProjectForm(forms.ModelForm):
    """The secret key is never rendered back into the page; blank on edit keeps the stored one."""

    host = forms.URLField(max_length=300, assume_scheme="https", initial="https://cloud.langfuse.com",
                          help_text="Langfuse's base URL (cloud or self-hosted).")
    secret_key = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                                 help_text="Langfuse → Settings → API keys (sk-lf-…). Leave blank to keep the current key.")

    class Meta:
        model = LangfuseProject
        fields = ("client", "host", "public_key", "secret_key", "enabled")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("secret_key"):
            if self.instance.pk:
                cleaned["secret_key"] = self.instance.secret_key
            else:
                self.add_error("secret_key", "The project's secret key is required.")
        return cleaned


@admin.register(LangfuseProject)
class LangfuseProjectAdmin(admin.ModelAdmin):
    form = LangfuseProjectForm
    list_display = ("__str__", "host", "public_key", "enabled")
    list_filter = ("enabled",)
    autocomplete_fields = ()
