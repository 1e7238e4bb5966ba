"""Phone numbers of one client (tenant schema) and their carrier credentials."""
from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField
from apps.telephony.carriers.registry import carrier_choices


class PhoneNumber(models.Model):
    number = models.CharField(max_length=32, unique=True, help_text="E.164, e.g. +15551230000")
    label = models.CharField(max_length=100, blank=True)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="phone_numbers")
    # The registered carriers (settings.TELEPHONY_CARRIER_MODULES); a callable, so adding one needs no migration.
    carrier = models.CharField(max_length=16, choices=carrier_choices, default="twilio")
    # Twilio: account SID; Plivo: auth id; Vonage: application id; Telnyx: connection id.
    account_sid = models.CharField(max_length=100, blank=True)
    # Twilio / Plivo auth token, Vonage signature secret, Telnyx API key: encrypted.
    auth_token = EncryptedTextField(blank=True)
    # Vonage: the application's private key (PEM) that signs REST requests (dial, hang-up, transfer): encrypted.
    api_private_key = EncryptedTextField(blank=True)
    # Telnyx: the base64 ed25519 public key that signs its webhooks (not secret).
    webhook_public_key = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number
