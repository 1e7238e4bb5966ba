"""Demo data for `manage.py seed_demo` (run by `make run`): an agency default rate
card, so `manage.py generate_invoices --period YYYY-MM` works on a fresh install.
Idempotent: nothing is added once any agency default card exists."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django_tenants.utils import schema_context

# Early enough that every month a demo install can invoice is covered.
DEMO_CARD_EFFECTIVE_FROM = date(2020, 1, 1)


def seed_demo_data(*, client) -> None:
    from apps.billing.selectors import rate_card_versions
    from apps.billing.services import metric_rate_set, rate_card_create

    with schema_context("public"):  # billing lives in the public schema
        if rate_card_versions(client=None).exists():
            return
        card = rate_card_create(
            effective_from=DEMO_CARD_EFFECTIVE_FROM,
            name="Demo agency default",
            currency="USD",
            platform_fee=Decimal("49"),
            tax_rate_percent=Decimal("0"),
            call_billing_increment_seconds=60,
        )
        per_minute = {"model": "per_unit", "unit_divisor": Decimal("60"), "unit_label": "min"}
        metric_rate_set(
            card=card,
            metric="call_seconds_inbound",
            unit_price=Decimal("0.10"),
            included_quantity=Decimal("100"),
            description="Inbound call minutes",
            **per_minute,
        )
        metric_rate_set(
            card=card,
            metric="call_seconds_outbound",
            unit_price=Decimal("0.12"),
            description="Outbound call minutes",
            **per_minute,
        )
        for metric in ("llm_input_tokens", "llm_output_tokens", "llm_cached_tokens", "s2s_input_audio_tokens",
                       "s2s_output_audio_tokens", "s2s_input_text_tokens", "s2s_output_text_tokens"):
            metric_rate_set(card=card, metric=metric, model="cost_plus", markup_percent=Decimal("20"), unit_label="token")
        metric_rate_set(
            card=card,
            metric="tts_characters",
            model="package",
            unit_price=Decimal("0.30"),
            package_size=Decimal("1000"),
            unit_label="character",
            description="Speech synthesis (per started 1,000 characters)",
        )
        # A clip is a file the platform already holds: a play costs less than the ~40 characters of speech it replaces.
        metric_rate_set(card=card, metric="clip_plays", model="per_unit", unit_price=Decimal("0.002"), unit_label="play",
                        description="Pre-recorded clip plays")
        metric_rate_set(card=card, metric="stt_seconds", model="cost_plus", markup_percent=Decimal("20"), unit_label="second")
        metric_rate_set(
            card=card, metric="phone_number_months", model="per_unit", unit_price=Decimal("2"), unit_label="number"
        )
