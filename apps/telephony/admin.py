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

    class Meta:
        model = PhoneNumber
        fields = ("number", "label", "agent", "carrier", "account_sid", "auth_token", "webhook_public_key", "is_active")

    def clean_auth_token(self):
        token = self.cleaned_data.get("auth_token") or ""
        if not token and self.instance.pk:
            return self.instance.auth_token
        return token


@admin.register(PhoneNumber, site=tenant_admin_site)
class PhoneNumberAdmin(PhoneNumberAuditMixin, admin.ModelAdmin):
    form = PhoneNumberForm
    list_display = ("number", "label", "carrier", "agent", "is_active")
    list_filter = ("carrier", "is_active")
