"""Rate card versions. A version that covers an invoiced (finalised) period is
locked; price changes then go into a new version effective from a later month."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.billing.models import MetricRate, RateCard
from apps.billing.pricing import PricingError
from apps.billing.selectors import invoiced_from, rate_card_is_locked
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, audit_log_record


def _refuse_invalid(instance, *, what: str, exclude: list[str] | None = None) -> None:
    """Run the model's validators (negative amounts, digits that do not fit the
    columns, bad tiers) and turn their verdict into one ApplicationError whose
    message and details name each field."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        fields = {name: [str(message) for message in messages] for name, messages in exc.message_dict.items()}
        summary = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
        raise ApplicationError(f"Invalid {what}: {summary}", details=fields) from exc


def rate_card_assert_editable(*, card: RateCard) -> None:
    if card.pk and rate_card_is_locked(card=card):
        raise ApplicationError(
            f"{card} already priced a finalised invoice. Create a new version effective from the next "
            "open month instead of editing it.",
            status_code=409,
        )


def rate_card_assert_period_open(*, client, effective_from: date) -> None:
    """A new version may not start in (or before) a month that is already invoiced."""
    if effective_from.day != 1:
        raise ApplicationError(
            "A rate card version starts on the 1st of a month.", details={"effective_from": str(effective_from)}
        )
    if invoiced_from(client_id=client.pk if client is not None else None, period_start=effective_from):
        raise ApplicationError(
            f"{effective_from:%Y-%m} or a later month is already invoiced for "
            f"{client or 'a client'}: a new version must start after the last finalised period.",
            status_code=409,
        )


def rate_card_create(
    *,
    client=None,
    effective_from: date,
    currency: str = "USD",
    platform_fee: Decimal = Decimal("0"),
    minimum_commitment: Decimal = Decimal("0"),
    tax_rate_percent: Decimal = Decimal("0"),
    call_billing_increment_seconds: int = 1,
    call_minimum_seconds: int = 0,
    name: str = "",
    copy_rates_from: RateCard | None = None,
) -> RateCard:
    """A new version. Refused if it would start inside an already-invoiced period."""
    card = RateCard(
        client=client,
        effective_from=effective_from,
        currency=currency.upper(),
        platform_fee=platform_fee,
        minimum_commitment=minimum_commitment,
        tax_rate_percent=tax_rate_percent,
        call_billing_increment_seconds=call_billing_increment_seconds,
        call_minimum_seconds=call_minimum_seconds,
        name=name,
    )
    _refuse_invalid(card, what="rate card")
    rate_card_assert_period_open(client=client, effective_from=effective_from)
    try:
        with transaction.atomic():
            card.save()
            if copy_rates_from is not None:
                for rate in copy_rates_from.rates.all():
                    rate.pk = None
                    rate.rate_card = card
                    rate.save()
            audit_log_record(actor=CURRENT, client=client, event_type="rate_card_versioned", target=card, changes={"effective_from": {"before": None, "after": effective_from}, "copied_from": {"before": None, "after": copy_rates_from.pk if copy_rates_from else None}})
    except IntegrityError as exc:
        raise ApplicationError(
            f"There is already a version effective from {effective_from:%Y-%m}.", status_code=409
        ) from exc
    return card


def metric_rate_set(*, card: RateCard, metric: str, dimension: str = "", **fields) -> MetricRate:
    """Create or replace the price of a metric on an editable card version."""
    with transaction.atomic():
        card = RateCard.objects.select_for_update().get(pk=card.pk)
        rate_card_assert_editable(card=card)
        rate, _ = MetricRate.objects.get_or_create(
            rate_card=card, metric=metric, dimension=dimension, defaults={"model": fields.get("model", "per_unit")}
        )
        for name, value in fields.items():
            setattr(rate, name, value)
        _refuse_invalid(rate, what=f"price for {metric}", exclude=["rate_card"])
        try:
            rate.to_price()  # validates tiers, package size, allowance...
        except (PricingError, ValueError, ArithmeticError) as exc:
            raise ApplicationError(f"Invalid price for {metric}: {exc}") from exc
        rate.save()
    return rate
