# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)
"""The portal's "Call me": a client admin has the agent phone them, through the same outbound door as
campaigns and the API (a Twilio REST double counts the dials); a double-submitted form dials once;
bad numbers and the hard cap are refused with the reason on the page; viewers see no button."""
import pytest
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.campaigns.tests.conftest import TWILIO_SID, TWILIO_TOKEN, make_agent, twilio_double  # noqa: F401
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401
from apps.telephony.models import PhoneNumber

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def line(tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent()
        number = PhoneNumber.objects.create(number="+15550001001", agent=agent, carrier="twilio",
                                            account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, label="Main")
    return agent, number


def _form(client, agent):
    page = client.get(f"/agents/{agent.pk}/", **HOST).content.decode()
    assert 'id="call-me-button"' in page
    key = page.split('name="request_key" value="')[1].split('"')[0]
    return page, key


def test_call_me_dials_once_per_form_and_opens_the_call(client, tenant_a, line, twilio_double, acme_admin):  # noqa: F811
    agent, number = line
    client.force_login(acme_admin)
    page, key = _form(client, agent)
    assert "+15550001001 (Main)" in page
    data = {"to_number": "+1 415 555 0123", "number": number.pk, "request_key": key}
    first = client.post(f"/agents/{agent.pk}/call-me/", data, **HOST)
    again = client.post(f"/agents/{agent.pk}/call-me/", data, **HOST)  # the form sent twice
    with tenant_context(tenant_a):
        [call] = Call.objects.all()
    assert first["Location"] == again["Location"] == f"/calls/{call.pk}/"
    assert (call.direction, call.from_number, call.to_number, call.agent_id) == (
        "outbound", "+15550001001", "+14155550123", agent.pk)
    assert call.idempotency_key == f"portal:{key}" and call.carrier_call_id
    assert sum(twilio_double.dials.values()) == 1
    shown = client.get(first["Location"], **HOST).content.decode()
    assert "Calling +14155550123 from +15550001001" in shown
    # The next form remembers the number and carries a new key: a second try is a second call.
    page, second_key = _form(client, agent)
    assert second_key != key and 'value="+14155550123"' in page


def test_call_me_refuses_bad_input_and_the_hard_cap_with_the_reason(  # noqa: F811
        client, tenant_a, line, twilio_double, acme_admin, monkeypatch):
    agent, number = line
    client.force_login(acme_admin)
    _, key = _form(client, agent)
    bad = client.post(f"/agents/{agent.pk}/call-me/", {"to_number": "12", "number": number.pk, "request_key": key},
                      follow=True, **HOST)
    assert "No call placed: &#x27;12&#x27; is not a phone number (use E.164" in bad.content.decode()
    stranger = client.post(f"/agents/{agent.pk}/call-me/",
                           {"to_number": "+14155550123", "number": 999999, "request_key": key}, follow=True, **HOST)
    assert "Choose one of this client&#x27;s active numbers" in stranger.content.decode()

    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    monkeypatch.setattr(selectors, "usage_cap_status",
                        lambda *, client, at=None: CapStatus("hard", "Our lines are closed for this month."))
    capped = client.post(f"/agents/{agent.pk}/call-me/",
                         {"to_number": "+14155550123", "number": number.pk, "request_key": key}, follow=True, **HOST)
    assert "hard usage cap" in capped.content.decode()
    with tenant_context(tenant_a):
        assert not Call.objects.exists()
    assert sum(twilio_double.dials.values()) == 0


def test_a_viewer_has_no_call_me(client, line, acme_viewer):  # noqa: F811
    agent, number = line
    client.force_login(acme_viewer)
    assert 'id="call-me-button"' not in client.get(f"/agents/{agent.pk}/", **HOST).content.decode()
    refused = client.post(f"/agents/{agent.pk}/call-me/", {"to_number": "+14155550123", "number": number.pk,
                                                          "request_key": "k"}, **HOST)
    assert refused.status_code == 403
