from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from apps.billing.services import UsageEventIn, metric_rate_set, rate_card_create


@pytest.fixture
def default_card(db):
    """Agency default from 2025-01: fee 49, tax 10 %, per started minute.
    inbound 0.10/min with 10 min included; outbound 0.12/min; LLM input cost + 20 %;
    TTS 0.30 per started 1,000 characters."""
    card = rate_card_create(
        effective_from=date(2025, 1, 1),
        currency="USD",
        platform_fee=D("49"),
        tax_rate_percent=D("10"),
        call_billing_increment_seconds=60,
    )
    metric_rate_set(
        card=card,
        metric="call_seconds_inbound",
        model="per_unit",
        unit_price=D("0.10"),
        unit_divisor=D("60"),
        included_quantity=D("10"),
        unit_label="min",
    )
    metric_rate_set(
        card=card,
        metric="call_seconds_outbound",
        model="per_unit",
        unit_price=D("0.12"),
        unit_divisor=D("60"),
        unit_label="min",
    )
    metric_rate_set(card=card, metric="llm_input_tokens", model="cost_plus", markup_percent=D("20"), unit_label="token")
    metric_rate_set(
        card=card,
        metric="tts_characters",
        model="package",
        unit_price=D("0.30"),
        package_size=D("1000"),
        unit_label="character",
    )
    return card


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def event(client, call_id, metric, quantity, when, **kw) -> UsageEventIn:
    return UsageEventIn(
        client_id=client.pk, call_id=str(call_id), metric=metric, quantity=D(str(quantity)), occurred_at=when, **kw
    )


@pytest.fixture
def eager_celery():
    """Run billing tasks in-process when enqueued (`.delay` executes at once, errors propagate)."""
    from config.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
