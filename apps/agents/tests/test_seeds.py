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
