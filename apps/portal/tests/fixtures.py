"""Portal user fixtures; import them into a test module that needs them."""
import pytest

from apps.accounts.models import User
from conftest import PASSWORD


@pytest.fixture
def acme_admin(tenant_a):
    return User.objects.get(email="admin@acme.test")


@pytest.fixture
def acme_viewer(tenant_a):
    user = User(username="viewer@acme.test", email="viewer@acme.test", role=User.Role.CLIENT_VIEWER, client=tenant_a)
    user.set_password(PASSWORD)
    user.save()
    return user
