"""The agency console: the overview home, calls across clients, call records that cannot be deleted, readable
related rows, rate cards copied as a new version with prices shown as numbers."""
from datetime import date
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.billing.models import BillingAccount, RateCard
from apps.calls.models import Call, CallUsage, ToolCall, Turn
from apps.portal.tests.data import client_rate_card, finished_call, turn

AGENCY = {"HTTP_HOST": "localhost"}


@pytest.fixture
def acme_month(tenant_a):
    from django.utils import timezone

    with tenant_context(tenant_a):
        client_rate_card(tenant_a)
        now = timezone.now()
        calls = [finished_call(tenant_a, number="+15550001000", from_number=f"+1555700000{i}", seconds=300,
                               turns=[turn(0, at=now, said="Where are you located?", answered="Main street.",
                                           v2v=700)] if i == 0 else [])
                 for i in range(4)]
        calls.append(finished_call(tenant_a, number="+15550001000", from_number="+15557000009", seconds=10,
                                   end_reason="error", error="tts: 503 from vendor"))
    BillingAccount.objects.create(client=tenant_a, hard_cap_minutes=Decimal("25"))
    return calls


def test_overview_home(client, agency_owner, acme_month, tenant_a, tenant_b):
    client.force_login(agency_owner)
    response = client.get("/admin/", **AGENCY)
    assert response.status_code == 200
    rows = {row.client.slug: row for row in response.context["overview"]}
    acme, globex = rows["acme"], rows["globex"]
    # 4 x 300 s + 10 s = 1,210 s; 4 x 5 min x 0.06 + 0.01 = 1.21 USD; 20.17 of 25 minutes
    assert (acme.calls, acme.minutes, acme.failed, acme.revenue, acme.currency, acme.cap_percent) == (
        5, Decimal("20.17"), 1, Decimal("1.21"), "USD", 80)
    assert acme.alerts == ("80% of cap", "1 of 5 calls failed")
    assert (globex.calls, globex.revenue, globex.alerts) == (0, None, ("no rate card",))
    # A number no agent answers is an alert (its calls are refused).
    with tenant_context(tenant_a):
        from apps.telephony.models import PhoneNumber

        PhoneNumber.objects.create(number="+15550001999", carrier="twilio", account_sid="AC1", auth_token="t")
    acme = {row.client.slug: row for row in client.get("/admin/", **AGENCY).context["overview"]}["acme"]
    assert acme.alerts == ("80% of cap", "1 of 5 calls failed", "no agent on +15550001999")
    page = response.content.decode()
    assert '<strong id="total-calls">5</strong>' in page
    assert "Calls across clients" in page
    assert "1.21 USD" in page


def test_calls_across_clients(client, agency_owner, acme_month, tenant_a):
    client.force_login(agency_owner)
    response = client.get("/admin/calls/", **AGENCY)
    assert response.status_code == 200
    assert [row.call.pk for row in response.context["rows"]] == [call.pk for call in reversed(acme_month)]
    failed = client.get("/admin/calls/?failed=1", **AGENCY)
    assert [row.call.pk for row in failed.context["rows"]] == [acme_month[-1].pk]
    assert "tts: 503 from vendor" in failed.content.decode()
    assert client.get("/admin/calls/?client=globex", **AGENCY).context["rows"] == []


def test_call_records_cannot_be_deleted_and_rows_read_well(client, agency_owner, acme_month, tenant_a):
    call = acme_month[0]
    client.force_login(agency_owner)
    session = client.session
    session["support_client_id"] = tenant_a.pk
    session.save()
    host = {"HTTP_HOST": "acme.localhost"}
    page = client.get(f"/admin/calls/call/{call.pk}/change/", **host)
    assert page.status_code == 200
    assert "/delete/" not in page.content.decode()  # no delete link
    assert client.get(f"/admin/calls/call/{call.pk}/delete/", **host).status_code == 403
    response = client.post("/admin/calls/call/", {"action": "delete_selected", "_selected_action": [str(call.pk)],
                                                   "post": "yes"}, **host)
    with tenant_context(tenant_a):
        assert Call.objects.filter(pk=call.pk).exists()
        first_turn = Turn.objects.get(call=call)
        assert str(first_turn) == "Turn 0: “Where are you located?”"
        assert str(CallUsage.objects.get(call=call, metric="call_seconds_inbound")) == "call_seconds_inbound: 300"
        assert str(ToolCall(name="end_call", turn=first_turn, call=call)) == "end_call (turn 0)"
    assert response.status_code in (200, 302)


def test_rate_card_copy_as_new_version(client, agency_owner, tenant_a):
    from django.utils import timezone

    from apps.billing.periods import next_period

    card = client_rate_card(tenant_a)
    client.force_login(agency_owner)
    response = client.post("/admin/billing/ratecard/", {"action": "copy_as_new_version",
                                                         "_selected_action": [str(card.pk)]}, **AGENCY)
    assert response.status_code == 302
    copy = RateCard.objects.filter(client=tenant_a).exclude(pk=card.pk).get()
    assert copy.effective_from == next_period(timezone.localdate())
    assert sorted(copy.rates.values_list("metric", "unit_price")) == sorted(card.rates.values_list("metric", "unit_price"))
    # Prices read as numbers in the form, never 0E-8.
    page = client.get(f"/admin/billing/ratecard/{copy.pk}/change/", **AGENCY).content.decode()
    assert 'value="0.06"' in page and "0E-8" not in page and 'name="platform_fee" value="0"' in page
    # Copying again starts a month later still.
    client.post("/admin/billing/ratecard/", {"action": "copy_as_new_version", "_selected_action": [str(card.pk)]},
                **AGENCY)
    assert RateCard.objects.filter(client=tenant_a).order_by("-effective_from").first().effective_from == \
        next_period(copy.effective_from)
    assert date(2025, 1, 1) == card.effective_from


def test_styled_error_pages(client, tenant_a, tenant_b):
    from apps.tenancy.services import client_user_create

    client.force_login(client_user_create(client=tenant_a, email="viewer@acme.test", password="pw-long-enough-1"))
    forbidden = client.get("/", HTTP_HOST="globex.localhost")
    assert forbidden.status_code == 403
    assert "You do not have access to this client&#x27;s portal." in forbidden.content.decode()
    assert 'class="code">403' in forbidden.content.decode()
    missing = client.get("/calls/00000000-0000-0000-0000-000000000000/", HTTP_HOST="acme.localhost")
    assert missing.status_code == 404 and 'class="code">404' in missing.content.decode()
    assert "favicon.svg" in missing.content.decode()
    admin_only = client.get("/team/", HTTP_HOST="acme.localhost")
    assert admin_only.status_code == 403 and "Only this client&#x27;s admins can do that." in admin_only.content.decode()
