from django import forms
from django.contrib import admin

from apps.core.admin_sites import tenant_admin_site
from apps.providers.models import ProviderAccount
from apps.providers.registry import vendors
from apps.providers.services import provider_account_problems
from apps.tenancy.audit import ProviderKeyAuditMixin


class ProviderKeyForm(forms.ModelForm):
    """A provider key in an admin (client's or agency's): secrets are never
    rendered back into the page; a blank field on edit keeps the stored one."""

    provider = forms.ChoiceField(choices=())
    api_key = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                              help_text="Leave blank to keep the current key.")
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                             help_text="Only for vendors with a second secret (AWS). Leave blank to keep it.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(vendor.name, vendor.label) for vendor in vendors().values()]

    def clean(self):
        cleaned = super().clean()
        for name in ("api_key", "secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        if "provider" in cleaned:
            problems = provider_account_problems(
                provider=cleaned["provider"], api_key=cleaned.get("api_key") or "",
                base_url=cleaned.get("base_url") or "", secret=cleaned.get("secret") or "",
                max_concurrency=cleaned.get("max_concurrency"))
            for field, message in problems.items():
                if field not in self.errors:
                    self.add_error(field, message)
        return cleaned


class ProviderAccountForm(ProviderKeyForm):
    class Meta:
        model = ProviderAccount
        fields = ("provider", "label", "api_key", "base_url", "region", "secret", "max_concurrency", "cooldown_until", "is_active")


@admin.register(ProviderAccount, site=tenant_admin_site)
class ProviderAccountAdmin(ProviderKeyAuditMixin, admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ("provider", "label", "masked_key", "max_concurrency", "cooldown_until", "is_active")
    list_filter = ("provider", "is_active")

    @admin.display(description="key")
    def masked_key(self, obj):
        return f"…{obj.last4}" if obj.last4 else "—"
