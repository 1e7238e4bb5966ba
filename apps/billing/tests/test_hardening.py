"""Hardening: stored secrets never rendered, database guards, refusals of nonsense."""


from apps.billing.models import BillingSettings

STORED_SECRET = "sk_test_stored_0123456789abcdef"
STORED_WEBHOOK = "whsec_stored_abcdef0123456789"


def _settings_form_data(**overrides):
    return {
        "invoice_prefix": "INV-",
        "credit_note_prefix": "CN-",
        "payment_terms_days": "14",
        "invoice_footer": "",
        "cap_alert_emails": "",
        "stripe_enabled": "on",
        "stripe_secret_key": "",
        "stripe_webhook_secret": "",
        **overrides,
    }


def test_admin_never_renders_stored_stripe_secrets_and_blank_keeps_them(client, agency_owner):
    row = BillingSettings.load()
    row.stripe_secret_key, row.stripe_webhook_secret = STORED_SECRET, STORED_WEBHOOK
    row.save()
    client.force_login(agency_owner)
    url = f"/admin/billing/billingsettings/{row.pk}/change/"
    page = client.get(url, HTTP_HOST="localhost")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="stripe_secret_key"' in html
    assert STORED_SECRET not in html and STORED_WEBHOOK not in html

    saved = client.post(url, _settings_form_data(payment_terms_days="30"), HTTP_HOST="localhost")
    assert saved.status_code == 302
    row.refresh_from_db()
    assert (row.payment_terms_days, row.stripe_secret_key, row.stripe_webhook_secret) == (
        30,
        STORED_SECRET,
        STORED_WEBHOOK,
    )
    # A refused form (bad number) does not echo the secret the person typed either.
    refused = client.post(
        url, _settings_form_data(payment_terms_days="-1", stripe_secret_key="sk_test_new_typed"), HTTP_HOST="localhost"
    )
    assert refused.status_code == 200 and "sk_test_new_typed" not in refused.content.decode()
    row.refresh_from_db()
    assert (row.payment_terms_days, row.stripe_secret_key) == (30, STORED_SECRET)

    client.post(url, _settings_form_data(stripe_secret_key="sk_test_new"), HTTP_HOST="localhost")
    row.refresh_from_db()
    assert (row.stripe_secret_key, row.stripe_webhook_secret) == ("sk_test_new", STORED_WEBHOOK)
    client.post(url, _settings_form_data(clear_stripe_webhook_secret="on"), HTTP_HOST="localhost")
    row.refresh_from_db()
    assert (row.stripe_secret_key, row.stripe_webhook_secret) == ("sk_test_new", "")


# ----------------------------------------------------------------------------- database guards

import pytest  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402

from apps.billing.models import Invoice, InvoiceLine, UsageEvent  # noqa: E402
from apps.billing.services import (  # noqa: E402
    invoice_generate,
    invoice_generate_and_finalize,
    invoice_mark_paid,
    invoice_mark_sent,
    usage_ingest,
)
from apps.billing.tests.conftest import at, event  # noqa: E402
from apps.billing.tests.test_invoices import MARCH, march_usage  # noqa: E402


def _refused(statement: str, params=None, match: str | None = None) -> None:
    with pytest.raises(IntegrityError, match=match), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _row(invoice_id: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_jsonb(i)::text FROM billing_invoice i WHERE id = %s", [invoice_id])
        return cursor.fetchone()


@pytest.fixture
def finalised(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    return invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)


@pytest.mark.parametrize(
    "assignment",
    [
        "period_start = '2025-04-01'",
        "starts_at = starts_at + interval '1 day'",
        "ends_at = ends_at + interval '1 day'",
        "due_on = due_on + 30",
        "finalised_at = finalised_at - interval '1 day'",
        "tax_label = 'VAT'",
        "created_at = created_at - interval '1 day'",
        "rate_card_id = NULL, default_rate_card_id = NULL",
        "credit_note_for_id = id",
        "status = 'draft'",
        "sent_at = now()",  # without the transition to sent
        "paid_at = now()",  # without the transition to paid
        "reason = 'rewritten'",  # without voiding
        "voided_at = now()",
    ],
)
def test_finalised_invoice_row_is_frozen_in_the_database(finalised, assignment):
    before = _row(finalised.pk)
    _refused(f"UPDATE billing_invoice SET {assignment} WHERE id = %s", [finalised.pk])
    assert _row(finalised.pk) == before


def test_finalised_invoice_takes_only_its_transitions(finalised):
    # the documented transitions (and only their fields) still work
    invoice_mark_sent(invoice_id=finalised.pk)
    before = _row(finalised.pk)
    _refused("UPDATE billing_invoice SET status = 'finalised' WHERE id = %s", [finalised.pk])
    _refused("UPDATE billing_invoice SET status = 'paid', due_on = due_on + 1 WHERE id = %s", [finalised.pk])
    _refused("UPDATE billing_invoice SET status = 'paid', sent_at = now() WHERE id = %s", [finalised.pk])
    assert _row(finalised.pk) == before
    paid = invoice_mark_paid(invoice_id=finalised.pk)
    assert paid.status == "paid"
    before = _row(finalised.pk)
    _refused("UPDATE billing_invoice SET status = 'void', voided_at = now() WHERE id = %s", [finalised.pk])
    _refused("UPDATE billing_invoice SET payment_failed_at = now() WHERE id = %s", [finalised.pk])
    assert _row(finalised.pk) == before


def test_lines_of_a_finalised_invoice_cannot_change_move_or_go(finalised, tenant_a):
    lines_before = list(InvoiceLine.objects.filter(invoice=finalised).values_list("id", "invoice_id", "amount"))
    line_id = lines_before[0][0]
    _refused("UPDATE billing_invoiceline SET amount = 0 WHERE id = %s", [line_id])
    _refused("DELETE FROM billing_invoiceline WHERE id = %s", [line_id])
    # moving a line out of the frozen invoice into a draft is refused too
    usage_ingest([event(tenant_a, "x", "qa_runs", 1, at(2025, 4, 2))])
    april = invoice_generate(client=tenant_a, period_start=MARCH.replace(month=4))
    assert april.status == "draft"
    _refused("UPDATE billing_invoiceline SET invoice_id = %s, position = 99 WHERE id = %s", [april.pk, line_id])
    assert list(InvoiceLine.objects.filter(invoice=finalised).values_list("id", "invoice_id", "amount")) == lines_before


@pytest.mark.parametrize("table", ["billing_usageevent", "billing_invoice", "billing_invoiceline"])
def test_truncate_of_money_history_is_refused(finalised, table):
    counts = (UsageEvent.objects.count(), Invoice.objects.count(), InvoiceLine.objects.count())
    assert counts == (12, 1, 7)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending deferred FK checks
    _refused(f"TRUNCATE {table} CASCADE", match="is billing history and cannot be truncated")
    # the escape hatch is only the explicit setting 'on'
    _refused(
        f"SET LOCAL switchboard.allow_billing_truncate = 'yes'; TRUNCATE {table} CASCADE",
        match="is billing history and cannot be truncated",
    )
    assert (UsageEvent.objects.count(), Invoice.objects.count(), InvoiceLine.objects.count()) == counts


# ----------------------------------------------------------------------------- refusing nonsense

from datetime import date  # noqa: E402
from decimal import Decimal as D  # noqa: E402

from django.contrib import admin as django_admin  # noqa: E402

from apps.billing.models import BillingAccount, MetricRate, RateCard  # noqa: E402
from apps.billing.pricing import MetricPrice, PriceModel, PricingError  # noqa: E402
from apps.billing.services import metric_rate_set, rate_card_create  # noqa: E402
from apps.core.errors import ApplicationError  # noqa: E402


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("platform_fee", D("-1"), "platform_fee: Must be zero or more, not negative."),
        ("minimum_commitment", D("-0.01"), "minimum_commitment: Must be zero or more, not negative."),
        ("tax_rate_percent", D("-5"), "tax_rate_percent: Must be zero or more, not negative."),
        ("tax_rate_percent", D("150"), "tax_rate_percent: A tax rate cannot exceed 100 percent."),
        ("platform_fee", D("1000000000000"), "platform_fee: Ensure that there are no more than 10 digits before the decimal point."),
        ("call_minimum_seconds", -30, "call_minimum_seconds: Ensure this value is greater than or equal to 0."),
    ],
)
def test_rate_card_service_refuses_nonsense_naming_the_field(db, field, value, message):
    with pytest.raises(ApplicationError) as refused:
        rate_card_create(effective_from=date(2025, 1, 1), **{field: value})
    assert refused.value.message == f"Invalid rate card: {message}"
    assert list(refused.value.details) == [field]
    assert RateCard.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"unit_price": D("-0.10")}, "unit_price", "Must be zero or more, not negative."),
        ({"markup_percent": D("-20"), "model": "cost_plus"}, "markup_percent", "Must be zero or more, not negative."),
        ({"included_quantity": D("-10")}, "included_quantity", "Must be zero or more, not negative."),
        ({"package_size": D("-1000"), "model": "package"}, "package_size", "Must be more than zero."),
        ({"package_size": D("0"), "model": "package"}, "package_size", "Must be more than zero."),
        ({"unit_divisor": D("0")}, "unit_divisor", "Must be more than zero."),
        (
            {"unit_price": D("12345678901")},
            "unit_price",
            "Ensure that there are no more than 10 digits before the decimal point.",
        ),
        (
            {"model": "graduated", "tiers": [{"up_to": "100", "unit_price": "0.05"}, {"up_to": None, "unit_price": "-1"}]},
            "tiers",
            "Tier 2: unit_price must be zero or more, not negative.",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": None, "unit_price": "0.05", "flat_fee": "-3"}]},
            "tiers",
            "Tier 1: flat_fee must be zero or more, not negative.",
        ),
        ({"model": "tiered_magic"}, "model", "Value 'tiered_magic' is not a valid choice."),
    ],
)
def test_metric_rate_service_refuses_nonsense_and_keeps_the_old_price(default_card, fields, field, message):
    before = list(MetricRate.objects.order_by("pk").values())
    with pytest.raises(ApplicationError) as refused:
        metric_rate_set(card=default_card, metric="call_seconds_outbound", **fields)
    assert refused.value.message == f"Invalid price for call_seconds_outbound: {field}: {message}"
    assert refused.value.details == {field: [message]}
    assert list(MetricRate.objects.order_by("pk").values()) == before


def test_pure_pricing_refuses_negative_prices():
    for kwargs in (
        {"unit_price": D("-1")},
        {"markup_percent": D("-5"), "model": PriceModel.COST_PLUS},
        {"package_size": D("-2")},
    ):
        with pytest.raises(PricingError):
            MetricPrice(metric="qa_runs", **{"model": PriceModel.PER_UNIT, **kwargs})


def _admin_form(model, data, instance=None):
    model_admin = django_admin.site._registry[model]
    form_class = model_admin.get_form(None, instance)
    return form_class(data=data, instance=instance)


def test_admin_forms_refuse_negative_amounts_naming_the_field(tenant_a, default_card, rf, agency_owner):
    from apps.billing.admin import MetricRateForm

    rate = MetricRate.objects.get(rate_card=default_card, metric="call_seconds_outbound")
    form = MetricRateForm(
        data={
            "rate_card": default_card.pk,
            "metric": "call_seconds_outbound",
            "dimension": "",
            "model": "per_unit",
            "unit_price": "-0.12",
            "tiers": "[]",
            "package_size": "1",
            "markup_percent": "0",
            "included_quantity": "0",
            "unit_divisor": "60",
            "unit_label": "min",
            "description": "",
        },
        instance=rate,
    )
    assert not form.is_valid()
    assert form.errors["unit_price"] == ["Must be zero or more, not negative."]

    request = rf.get("/")
    request.user = agency_owner
    card_form = django_admin.site._registry[RateCard].get_form(request, None)(
        data={
            "client": tenant_a.pk,
            "name": "",
            "effective_from": "2025-06-01",
            "currency": "USD",
            "platform_fee": "-49",
            "minimum_commitment": "0",
            "tax_rate_percent": "10",
            "tax_label": "Tax",
            "call_billing_increment_seconds": "1",
            "call_minimum_seconds": "0",
        }
    )
    assert not card_form.is_valid()
    assert card_form.errors["platform_fee"] == ["Must be zero or more, not negative."]

    account_form = django_admin.site._registry[BillingAccount].get_form(request, None)(
        data={
            "client": tenant_a.pk,
            "soft_cap_minutes": "-10",
            "hard_cap_minutes": "",
            "soft_cap_amount": "",
            "hard_cap_amount": "99999999999999",
            "cap_message": "Closed.",
        }
    )
    assert not account_form.is_valid()
    assert account_form.errors["soft_cap_minutes"] == ["Must be zero or more, not negative."]
    assert account_form.errors["hard_cap_amount"] == ["Ensure that there are no more than 12 digits before the decimal point."]
    assert (RateCard.objects.count(), BillingAccount.objects.count()) == (1, 0)


def test_database_refuses_negative_prices_and_caps(default_card, tenant_a):
    rate = MetricRate.objects.get(rate_card=default_card, metric="call_seconds_outbound")
    _refused("UPDATE billing_metricrate SET unit_price = -1 WHERE id = %s", [rate.pk])
    _refused("UPDATE billing_metricrate SET package_size = 0 WHERE id = %s", [rate.pk])
    _refused("UPDATE billing_ratecard SET tax_rate_percent = -10 WHERE id = %s", [default_card.pk])
    account = BillingAccount.objects.create(client=tenant_a)
    _refused("UPDATE billing_billingaccount SET hard_cap_amount = -5 WHERE id = %s", [account.pk])
    rate.refresh_from_db()
    default_card.refresh_from_db()
    account.refresh_from_db()
    assert (rate.unit_price, rate.package_size, default_card.tax_rate_percent, account.hard_cap_amount) == (
        D("0.12"),
        D("1"),
        D("10"),
        None,
    )
