"""Agency admin (public schema): the agency's own provider keys and which clients may use them."""
from django import forms
from django.contrib import admin

from apps.providers.registry import vendors
from apps.providers_agency.models import AgencyProviderAccount


class AgencyProviderAccountForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=())
    # Never rendered back: leave blank on edit to keep the stored key.
    api_key = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                              help_text="Leave blank to keep the current key.")
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                             help_text="Only for vendors with a second secret (AWS). Leave blank to keep it.")

    class Meta:
        model = AgencyProviderAccount
        fields = ("provider", "label", "api_key", "base_url", "region", "secret", "max_concurrency",
                  "cooldown_until", "all_clients", "allowed_clients", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(vendor.name, vendor.label) for vendor in vendors().values()]

    def clean(self):
        cleaned = super().clean()
        for name in ("api_key", "secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        vendor = vendors().get(cleaned.get("provider"))
        if vendor is not None and vendor.needs_key and not cleaned.get("api_key"):
            self.add_error("api_key", f"{vendor.label} needs an API key.")
        return cleaned


@admin.register(AgencyProviderAccount)
class AgencyProviderAccountAdmin(admin.ModelAdmin):
    form = AgencyProviderAccountForm
    list_display = ("provider", "label", "masked_key", "max_concurrency", "who_may_use", "cooldown_until", "is_active")
    list_filter = ("provider", "is_active", "all_clients")
    filter_horizontal = ("allowed_clients",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("allowed_clients")

    @admin.display(description="key")
    def masked_key(self, obj):
        return f"…{obj.last4}" if obj.last4 else "—"

    @admin.display(description="clients")
    def who_may_use(self, obj):
        if obj.all_clients:
            return "all clients"
        names = [client.name for client in obj.allowed_clients.all()]
        return ", ".join(names) or "none yet"
