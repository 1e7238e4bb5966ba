"""Mail to people, off the request: the team invitation."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="accounts.send_invite_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invite_email(user_id: int, invited_by: str) -> bool:
    from django.core.mail import send_mail
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.accounts.services import invite_link_path
    from apps.core.hosts import client_url
    from apps.tenancy.models import AgencySettings

    with schema_context("public"):
        user = User.objects.select_related("client").filter(pk=user_id).first()
        if user is None or user.client is None or user.has_usable_password():
            return False  # removed, or already accepted
        agency = AgencySettings.objects.filter(pk=1).first() or AgencySettings()
        link = client_url(user.client, invite_link_path(user))
        send_mail(
            subject=f"You are invited to {user.client.name} on {agency.name}",
            message=(f"{invited_by} invited you to the {user.client.name} portal as "
                     f"{user.get_role_display().lower()}.\n\nSet your password here (the link works once, "
                     f"for a few days):\n{link}\n\nThen log in with {user.email}.\n"),
            from_email=None,
            recipient_list=[user.email],
        )
    return True
