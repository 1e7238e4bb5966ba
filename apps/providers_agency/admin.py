"""Agency admin (public schema): the agency's own provider keys and which clients may use them."""
from django.contrib import admin

from apps.providers.admin import ProviderKeyForm
from apps.providers_agency.models import AgencyProviderAccount
from apps.tenancy.audit import ProviderKeyAuditMixin


class AgencyProviderAccountForm(ProviderKeyForm):
    class Meta:
        model = AgencyProviderAccount
        fields = ("provider", "label", "api_key", "base_url", "region", "secret", "max_concurrency",
                  "cooldown_until", "all_clients", "allowed_clients", "is_active")


@admin.register(AgencyProviderAccount)
class AgencyProviderAccountAdmin(ProviderKeyAuditMixin, admin.ModelAdmin):
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
