from decimal import Decimal as D

import pytest
from django.core import mail

from apps.billing.models import BillingAccount, CapAlert
from apps.billing.selectors import usage_cap_status
from apps.billing.services import cap_check_after_usage, usage_ingest
from apps.billing.tests.conftest import at, event

NOW = at(2025, 3, 15, 12)


@pytest.fixture
def capped(tenant_a, default_card, agency_owner):
    return BillingAccount.objects.create(
        client=tenant_a, soft_cap_minutes=D("10"), hard_cap_minutes=D("20"), cap_message="Sorry, we are closed."
    )


def test_no_caps_means_allowed(tenant_a, default_card):
    usage_ingest([event(tenant_a, "c", "call_seconds_inbound", 100000, at(2025, 3, 2))])
    status = usage_cap_status(client=tenant_a, at=NOW)
    assert (status.state, status.allowed, status.message) == ("allowed", True, "")


def test_minutes_caps_soft_then_hard_alert_once_each(capped, tenant_a, django_capture_on_commit_callbacks, eager_celery):
    assert usage_cap_status(client=tenant_a, at=NOW).state == "allowed"
    # 570 s rounds to 600 s per started minute = 10 min: soft cap reached.
    usage_ingest([event(tenant_a, "c1", "call_seconds_inbound", 570, at(2025, 3, 2))])
    status = usage_cap_status(client=tenant_a, at=NOW)
    assert (status.state, status.allowed, status.minutes_used) == ("soft", True, D("10"))
    with django_capture_on_commit_callbacks(execute=True):
        first = cap_check_after_usage(client_id=tenant_a.pk, now=NOW)
        again = cap_check_after_usage(client_id=tenant_a.pk, now=NOW)
    assert (first.level, again) == ("soft", None)
    assert [m.subject for m in mail.outbox] == ["[Switchboard] Acme Dental reached its soft usage cap"]
    assert mail.outbox[0].to == ["owner@agency.test"]
    # 10 more minutes outbound: hard cap; the caller hears the configured message.
    usage_ingest([event(tenant_a, "c2", "call_seconds_outbound", 600, at(2025, 3, 3))])
    status = usage_cap_status(client=tenant_a, at=NOW)
    assert (status.state, status.allowed, status.message, status.minutes_used) == (
        "hard",
        False,
        "Sorry, we are closed.",
        D("20"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert cap_check_after_usage(client_id=tenant_a.pk, now=NOW).level == "hard"
        assert cap_check_after_usage(client_id=tenant_a.pk, now=NOW) is None
    assert list(CapAlert.objects.order_by("level").values_list("level", flat=True)) == ["hard", "soft"]
    assert len(mail.outbox) == 2
    # A new month starts from zero.
    assert usage_cap_status(client=tenant_a, at=at(2025, 4, 1, 0, 0)).state == "allowed"


def test_money_cap_counts_charges_after_allowance(tenant_a, default_card):
    BillingAccount.objects.create(client=tenant_a, soft_cap_amount=D("0.50"), hard_cap_amount=D("1.08"))
    # outbound 0.12/min: 8 min = 0.96 -> soft; 9 min = 1.08 -> hard
    usage_ingest([event(tenant_a, "c1", "call_seconds_outbound", 480, at(2025, 3, 2))])
    status = usage_cap_status(client=tenant_a, at=NOW)
    assert (status.state, status.amount_used, status.currency) == ("soft", D("0.96"), "USD")
    usage_ingest([event(tenant_a, "c2", "call_seconds_outbound", 60, at(2025, 3, 2))])
    assert usage_cap_status(client=tenant_a, at=NOW).state == "hard"
    # Inbound minutes inside the 10-minute allowance add no money.
    BillingAccount.objects.filter(client=tenant_a).update(hard_cap_amount=D("1.09"))
    usage_ingest([event(tenant_a, "c3", "call_seconds_inbound", 600, at(2025, 3, 2))])
    status = usage_cap_status(client=tenant_a, at=NOW)
    assert (status.state, status.amount_used) == ("soft", D("1.08"))
