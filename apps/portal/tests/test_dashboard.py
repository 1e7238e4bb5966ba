"""The client dashboard: this range's calls, minutes and latency, the month's estimated bill, the cap meter."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.billing.models import BillingAccount
from apps.portal.tests.data import client_rate_card, finished_call, turn

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def month(tenant_a):
    with tenant_context(tenant_a):
        client_rate_card(tenant_a)
        now = timezone.now()
        finished_call(tenant_a, number="+15550001000", from_number="+15557000001", seconds=600,
                      turns=[turn(0, at=now, said="hi", answered="hello", v2v=900)])
        finished_call(tenant_a, number="+15550001000", from_number="+15557000002", seconds=300,
                      end_reason="agent_ended")


def test_dashboard_shows_the_range_and_the_bill(client, acme_viewer, month, tenant_a):
    BillingAccount.objects.create(client=tenant_a, hard_cap_minutes=Decimal("60"))
    client.force_login(acme_viewer)
    today = timezone.localdate()
    response = client.get(f"/?since={today - timedelta(days=6)}&until={today}", **HOST)
    page = response.content.decode()
    assert response.status_code == 200
    assert '<div class="value" id="tile-calls">2</div>' in page
    assert '<div class="value" id="tile-minutes">15.0</div>' in page
    assert "900 ms / 900 ms" in page
    assert '<div class="value" id="tile-spend">0.90 USD</div>' in page  # 15 min x 0.06
    assert 'aria-valuenow="25"' in page  # 15 of 60 minutes
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert '"calls": [0, 0, 0, 0, 0, 0, 2]' in page


def test_dashboard_bad_range_is_an_error_not_a_500(client, acme_viewer, month):
    client.force_login(acme_viewer)
    response = client.get("/?since=2026-05-09&until=2026-05-01", **HOST)
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    assert client.get("/?since=yesterday", **HOST).status_code == 200


def test_range_presets(client, acme_viewer, tenant_a):
    from datetime import date

    from apps.portal.selectors import dashboard_presets

    assert dashboard_presets(client=tenant_a, today=date(2026, 3, 10)) == [
        ("This month", date(2026, 3, 1), date(2026, 3, 10)), ("Last 7 days", date(2026, 3, 4), date(2026, 3, 10)),
        ("Last 30 days", date(2026, 2, 9), date(2026, 3, 10)), ("Last month", date(2026, 2, 1), date(2026, 2, 28))]
    client.force_login(acme_viewer)
    page = client.get("/", **HOST).content.decode()
    _, since, until = dashboard_presets(client=tenant_a)[0]
    assert f'href="?since={since:%Y-%m-%d}&until={until:%Y-%m-%d}" class="current">This month' in page
