from django import forms
from django.contrib import admin

from apps.core.admin_sites import tenant_admin_site
from apps.telephony.models import PhoneNumber
from apps.tenancy.audit import PhoneNumberAuditMixin


class PhoneNumberForm(forms.ModelForm):
    """The carrier auth token is never rendered back into the page (as with provider
    keys, apps.providers.admin); a blank field on edit keeps the stored token."""

    auth_token = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                                 help_text="Leave blank to keep the current token.")
    api_private_key = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                      label="API private key (Vonage)",
                                      help_text="The Vonage application's private key (PEM) for outbound calls, "
                                                "hang-ups and transfers. Never shown again; blank keeps it.")

    class Meta:
        model = PhoneNumber
        fields = ("number", "label", "agent", "carrier", "account_sid", "auth_token", "api_private_key", "webhook_public_key",
                  "is_active")

    def clean_auth_token(self):
        token = self.cleaned_data.get("auth_token") or ""
        if not token and self.instance.pk:
            return self.instance.auth_token
        return token

    def clean_api_private_key(self):
        key = (self.cleaned_data.get("api_private_key") or "").strip()
        if not key and self.instance.pk:
            return self.instance.api_private_key
        return key

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["api_private_key"] = ""  # a secret is never rendered back into the page


@admin.register(PhoneNumber, site=tenant_admin_site)
class PhoneNumberAdmin(PhoneNumberAuditMixin, admin.ModelAdmin):
    form = PhoneNumberForm
    list_display = ("number", "label", "carrier", "agent", "is_active")
    list_filter = ("carrier", "is_active")
