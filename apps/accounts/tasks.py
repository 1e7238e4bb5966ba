"""Mail to people, off the request: the team invitation."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="accounts.send_invite_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invite_email(user_id: int, invited_by: str) -> bool:
    from apps.accounts.services import team_invite_email_send

    return team_invite_email_send(user_id=user_id, invited_by=invited_by)
