from __future__ import annotations

from django.db.models import QuerySet

from apps.api.models import ApiKey


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.order_by("revoked_at", "-created_at")
