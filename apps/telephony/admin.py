from django import forms
from django.contrib import admin

from apps.core.admin_sites import tenant_admin_site
from apps.telephony.models import PhoneNumber
from apps.tenancy.audit import PhoneNumberAuditMixin


class PhoneNumberForm(forms.ModelForm):
    auth_token = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)

    class Meta:
        model = PhoneNumber
        fields = ("number", "label", "agent", "carrier", "account_sid", "auth_token", "webhook_public_key", "is_active")


@admin.register(PhoneNumber, site=tenant_admin_site)
class PhoneNumberAdmin(PhoneNumberAuditMixin, admin.ModelAdmin):
    form = PhoneNumberForm
    list_display = ("number", "label", "carrier", "agent", "is_active")
    list_filter = ("carrier", "is_active")
