import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.calls.services import call_create_inbound
from apps.portal.tests.fixtures import acme_admin  # noqa: F401  (the portal's client admin)
from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import make_agent


def make_call(tenant, number):
    with tenant_context(tenant):
        agent = make_agent()
        PhoneNumber.objects.create(number=number, agent=agent, carrier="twilio", account_sid="AC1", auth_token="t")
        return call_create_inbound(to_number=number, from_number="+15557654321", carrier_call_id=f"CA-{number}")


@pytest.fixture
def acme_call(tenant_a):
    return make_call(tenant_a, "+15550001000")


@pytest.fixture
def globex_call(tenant_b):
    return make_call(tenant_b, "+15550002000")


@pytest.fixture
def acme_viewer(tenant_a):
    user = User(username="viewer@acme.test", email="viewer@acme.test", role=User.Role.CLIENT_VIEWER, client=tenant_a)
    user.set_password("correct-horse-battery")
    user.save()
    return user
