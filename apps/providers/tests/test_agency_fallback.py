"""Agency keys: a client falls back to the agency's keys it is allowed to use;
calls record which key served ("agency:<id>"); caps are shared across clients."""
import pytest
from django_tenants.utils import schema_context, tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.services import agent_save
from apps.calls.models import Call
from apps.calls.services import call_create_inbound, call_end
from apps.core.errors import ApplicationError, ProviderError
from apps.providers.models import ProviderAccount
from apps.providers.services import provider_key_in_use, provider_key_lease, provider_key_mark_rate_limited
from apps.providers_agency.models import AgencyProviderAccount
from apps.telephony.models import PhoneNumber


def agency_key(api_key, *, provider="deepgram", allowed=(), all_clients=False, max_concurrency=0):
    with schema_context("public"):
        account = AgencyProviderAccount.objects.create(provider=provider, api_key=api_key, all_clients=all_clients,
                                                       max_concurrency=max_concurrency)
        account.allowed_clients.set(allowed)
        return account


def test_client_without_its_own_key_leases_an_allowed_agency_key(tenant_a, clean_leases):
    agency = agency_key("agency-dg-1", allowed=[tenant_a])
    with tenant_context(tenant_a):
        leased = provider_key_lease(provider="deepgram", call_id="c1")
        assert (type(leased), leased.pk, leased.key_ref, leased.api_key) == (
            AgencyProviderAccount, agency.pk, f"agency:{agency.pk}", "agency-dg-1")
        assert provider_key_in_use(account=agency) == 1


def test_own_keys_come_first_and_agency_serves_when_they_are_busy(tenant_a, clean_leases):
    agency = agency_key("agency-dg-1", all_clients=True)
    with tenant_context(tenant_a):
        own = ProviderAccount.objects.create(provider="deepgram", api_key="own-dg", max_concurrency=1)
        served = [provider_key_lease(provider="deepgram", call_id=call).key_ref for call in ("a", "b", "c")]
        assert served == [str(own.pk), f"agency:{agency.pk}", f"agency:{agency.pk}"]


def test_own_key_in_cooldown_falls_back_to_the_agency(tenant_a, clean_leases):
    agency = agency_key("agency-dg-1", all_clients=True)
    with tenant_context(tenant_a):
        own = ProviderAccount.objects.create(provider="deepgram", api_key="own-dg")
        provider_key_mark_rate_limited(account_id=own.pk, cooldown_secs=60)
        assert provider_key_lease(provider="deepgram", call_id="a").key_ref == f"agency:{agency.pk}"


def test_calls_rotate_across_agency_keys_and_skip_one_in_cooldown(tenant_a, clean_leases):
    first = agency_key("agency-dg-1", all_clients=True)
    second = agency_key("agency-dg-2", all_clients=True)
    third = agency_key("agency-dg-3", all_clients=True)
    with tenant_context(tenant_a):
        served = [provider_key_lease(provider="deepgram", call_id=f"r{n}").pk for n in range(6)]
        assert served == [first.pk, second.pk, third.pk, first.pk, second.pk, third.pk]
        provider_key_mark_rate_limited(account_id=f"agency:{second.pk}", cooldown_secs=60)
        served = [provider_key_lease(provider="deepgram", call_id=f"s{n}").pk for n in range(3)]
        assert served == [first.pk, third.pk, third.pk]
    with schema_context("public"):
        second.refresh_from_db()
        assert second.cooldown_until is not None


def test_an_agency_keys_cap_is_shared_by_every_client(tenant_a, tenant_b, clean_leases):
    agency = agency_key("agency-dg-1", all_clients=True, max_concurrency=1)
    with tenant_context(tenant_a):
        assert provider_key_lease(provider="deepgram", call_id="acme-1").pk == agency.pk
    with tenant_context(tenant_b):
        with pytest.raises(ProviderError) as error:
            provider_key_lease(provider="deepgram", call_id="globex-1")
        assert (error.value.retryable, error.value.message) == (
            True, "Every deepgram key is busy or rate-limited; try again shortly.")
    assert provider_key_in_use(account=agency) == 1


def test_a_client_off_the_allow_list_cannot_lease_the_key(tenant_a, tenant_b, clean_leases):
    agency = agency_key("agency-dg-1", allowed=[tenant_b])
    with tenant_context(tenant_a):
        with pytest.raises(ProviderError) as error:
            provider_key_lease(provider="deepgram", call_id="a")
        assert error.value.retryable is False
    assert provider_key_in_use(account=agency) == 0


def test_agent_save_accepts_an_allowed_agency_key(tenant_a):
    agency_key("agency-dg-1", allowed=[tenant_a])
    agency_key("agency-oa-1", provider="openai", all_clients=True)
    with tenant_context(tenant_a):
        agent = agent_save(name="Reception", stt_provider="deepgram", stt_settings={"model": "nova-2"},
                           llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper",
                           tts_settings={})
        assert agent.current_version.number == 1


def test_agent_save_refuses_an_agency_key_the_client_is_not_allowed(tenant_a, tenant_b):
    agency_key("agency-dg-1", allowed=[tenant_b])
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai", api_key="oa-key")
        with pytest.raises(ApplicationError) as error:
            agent_save(name="Reception", stt_provider="deepgram", stt_settings={"model": "nova-2"},
                       llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper",
                       tts_settings={})
        expected = ("The agency's Deepgram key is not available to Acme Dental: ask your agency to allow it, "
                    "or add your own Deepgram key under Provider accounts.")
        assert error.value.message == f"The agent cannot be saved: {expected}"
        assert error.value.details == {"stt_provider": expected}
        assert (Agent.objects.count(), AgentVersion.objects.count()) == (0, 0)


def test_the_call_records_the_agency_key_that_served_and_releases_it(tenant_a, clean_leases,
                                                                      django_capture_on_commit_callbacks):
    from apps.calls.services import call_stream_start
    from apps.calls.stream_tokens import stream_token_mint

    agency = agency_key("agency-dg-1", allowed=[tenant_a])
    with tenant_context(tenant_a):
        own_llm = ProviderAccount.objects.create(provider="openai", api_key="oa-key")
        agent = agent_save(name="Reception", stt_provider="deepgram", stt_settings={"model": "nova-2"},
                           llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper",
                           tts_settings={})
        PhoneNumber.objects.create(number="+15550001000", agent=agent, carrier="twilio", account_sid="AC1",
                                   auth_token="t")
        call = call_create_inbound(to_number="+15550001000", from_number="+15557654321", carrier_call_id="CA-1")
        started = call_stream_start(client=tenant_a, call_id=call.pk, stream_id="MZ1", carrier_call_id="CA-1",
                                    token=stream_token_mint(schema=tenant_a.schema_name, call_id=str(call.pk)))
        config = started.runtime
        assert (config.stt.api_key, config.stt.key_id) == ("agency-dg-1", f"agency:{agency.pk}")
        assert (config.llm.api_key, config.llm.key_id) == ("oa-key", str(own_llm.pk))
        call.refresh_from_db()
        assert (call.stt_provider, call.stt_key_id, call.llm_key_id, call.tts_key_id) == (
            "deepgram", f"agency:{agency.pk}", str(own_llm.pk), "")
        assert provider_key_in_use(account=agency) == 1
        with django_capture_on_commit_callbacks(execute=True):
            call_end(call_id=call.pk, end_reason="caller_hung_up", usage={})
        assert provider_key_in_use(account=agency) == 0
        assert Call.objects.get(pk=call.pk).stt_key_id == f"agency:{agency.pk}"
