"""The outbound dial door's database work per dial (the campaign dialer's hot path): the exact
queries of a new dial, of the same request again, and of a dial with the dialer's per-turn cache."""
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.telephony.models import PhoneNumber
from apps.telephony.services import DialTurn, telephony_call_outbound


def _statements(queries) -> list[str]:
    return [query["sql"].split(" ", 2)[0] + " " + query["sql"].split('"', 2)[1] for query in queries.captured_queries]


def test_a_dial_with_the_turns_cache_is_one_insert_and_one_update(tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        number = PhoneNumber.objects.select_related("agent__current_version").get(pk=acme_number.pk)
        turn = DialTurn(client=tenant_a, cap_max_age_secs=3600)
        telephony_call_outbound(phone_number=number, to_number="+15557770009", idempotency_key="warm", agent=number.agent,
                                turn=turn)  # the turn's first dial rates the cap and reads the client's domain
        with CaptureQueriesContext(connection) as queries:
            call = telephony_call_outbound(phone_number=number, to_number="+15557770000", idempotency_key="k-count",
                                           agent=number.agent, turn=turn)
        assert _statements(queries) == ["INSERT calls_call", "UPDATE calls_call"]
        assert "ON CONFLICT DO NOTHING RETURNING" in queries.captured_queries[0]["sql"]
        stored = Call.objects.get(idempotency_key="k-count")
        assert (stored.pk, stored.carrier_call_id, stored.status, stored.from_number, stored.to_number) == (
            call.pk, "CA" + "0" * 31 + "2", "queued", "+15550001000", "+15557770000")
        # The same request again: the existing call, read back, no dial.
        with CaptureQueriesContext(connection) as queries:
            again = telephony_call_outbound(phone_number=number, to_number="+15557770000", idempotency_key="k-count",
                                            agent=number.agent, turn=turn)
        assert _statements(queries) == ["INSERT calls_call", "SELECT calls_call"]
        assert (again.pk, again.carrier_call_id) == (call.pk, stored.carrier_call_id)
    assert len(twilio_double.requests) == 2
    # The turn's cached origin and webhook path make the same callback URL as a dial on its own.
    assert twilio_double.requests[1].form["StatusCallback"] == [
        f"http://acme.localhost:8000/telephony/twilio/status/{call.pk}/"]


def test_a_dial_without_the_cache_rates_the_cap_and_reads_the_domain_once(tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        number = PhoneNumber.objects.select_related("agent__current_version").get(pk=acme_number.pk)
        with CaptureQueriesContext(connection) as queries:
            telephony_call_outbound(phone_number=number, to_number="+15557770000", idempotency_key="k-one",
                                    agent=number.agent)
        # The cap (no billing account here: one query), the insert, the domain, the carrier's id.
        assert _statements(queries) == ["SELECT billing_billingaccount", "INSERT calls_call", "SELECT tenancy_domain",
                                        "UPDATE calls_call"]
