"""Reads of users."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import User


def team_list(*, client) -> QuerySet[User]:
    """The client's users: admins first, then by email."""
    return User.objects.filter(client_id=client.pk).order_by("role", "email")
