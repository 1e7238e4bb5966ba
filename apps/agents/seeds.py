"""Demo data for `manage.py seed_demo`: an offline-capable demo agent, provider
accounts and a phone number. Idempotent."""
from __future__ import annotations

import os


def seed_demo_data(*, client) -> None:
    from apps.agents.models import Agent
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount
    from apps.telephony.models import PhoneNumber

    # Local doubles by default (make run / simulate_call); real keys are added in the client admin.
    base_url = os.environ.get("DEMO_OPENAI_BASE_URL", "http://127.0.0.1:8111/v1")
    double_label = "Local OpenAI-compatible double"
    if not ProviderAccount.objects.filter(provider="openai_compatible").exists():
        ProviderAccount.objects.create(provider="openai_compatible", label=double_label,
                                       api_key="demo-key", base_url=base_url, max_concurrency=10)
    else:  # `make run` again with the double elsewhere (DEMO_OPENAI_BASE_URL / DEMO_DOUBLE_PORT): follow it
        ProviderAccount.objects.filter(provider="openai_compatible", label=double_label).exclude(
            base_url=base_url).update(base_url=base_url)
    agent = Agent.objects.filter(name="Demo receptionist").first()
    if agent is None:
        agent = agent_save(
            name="Demo receptionist",
            greeting="Thanks for calling Demo Dental, how can I help?",
            system_prompt="You are the receptionist of Demo Dental. Be brief and friendly.",
            stt_provider="openai_compatible", stt_settings={"model": "whisper-1"},
            llm_provider="openai_compatible", llm_settings={"model": "gpt-4o-mini", "temperature": 0.3},
            tts_provider="piper", tts_settings={"voice": "en_US-joe-medium"},
            end_call_phrases=["goodbye"], tools=["end_call", "transfer_to_human"], transfer_number="+15550100999",
        )
    PhoneNumber.objects.get_or_create(
        number="+15550100100",
        defaults={"label": "Demo main line", "agent": agent, "carrier": "twilio", "account_sid": "AC" + "d" * 32,
                  "auth_token": "demo-twilio-auth-token"},
    )
