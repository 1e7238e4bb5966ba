from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.seeds import seed_demo_data
from apps.providers.models import ProviderAccount
from apps.telephony.models import PhoneNumber


def test_seed_demo_data_is_idempotent(tenant_a):
    with tenant_context(tenant_a):
        seed_demo_data(client=tenant_a)
        seed_demo_data(client=tenant_a)
        agent = Agent.objects.get(name="Demo receptionist")
        assert AgentVersion.objects.filter(agent=agent).count() == 1
        assert ProviderAccount.objects.filter(provider="openai_compatible").count() == 1
        number = PhoneNumber.objects.get(number="+15550100100")
        assert (number.agent_id, number.carrier) == (agent.pk, "twilio")


def test_seed_demo_data_follows_the_double_to_a_new_url(tenant_a, monkeypatch):
    """`make run` again with DEMO_OPENAI_BASE_URL pointing elsewhere: the demo agent's account follows,
    a key someone added by hand does not change."""
    with tenant_context(tenant_a):
        monkeypatch.setenv("DEMO_OPENAI_BASE_URL", "http://127.0.0.1:8111/v1")
        seed_demo_data(client=tenant_a)
        own = ProviderAccount.objects.create(provider="openai_compatible", label="Our vLLM", api_key="k",
                                             base_url="http://vllm.internal/v1")
        monkeypatch.setenv("DEMO_OPENAI_BASE_URL", "http://10.0.0.9:9000/v1")
        seed_demo_data(client=tenant_a)
        assert sorted(ProviderAccount.objects.filter(provider="openai_compatible").values_list("label", "base_url")) \
            == [("Local OpenAI-compatible double", "http://10.0.0.9:9000/v1"), ("Our vLLM", "http://vllm.internal/v1")]
        own.refresh_from_db()
        assert own.api_key == "k"
