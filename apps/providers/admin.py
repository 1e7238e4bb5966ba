from django import forms
from django.contrib import admin

from apps.core.admin_sites import tenant_admin_site
from apps.providers.models import ProviderAccount
from apps.providers.registry import vendors


class ProviderAccountForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=())
    api_key = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)

    class Meta:
        model = ProviderAccount
        fields = ("provider", "label", "api_key", "base_url", "region", "secret", "max_concurrency", "cooldown_until", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(vendor.name, vendor.label) for vendor in vendors().values()]


@admin.register(ProviderAccount, site=tenant_admin_site)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ("provider", "label", "masked_key", "max_concurrency", "cooldown_until", "is_active")
    list_filter = ("provider", "is_active")

    @admin.display(description="key")
    def masked_key(self, obj):
        return f"…{obj.last4}" if obj.last4 else "—"
