import pytest


@pytest.fixture
def clean_leases():
    """Forget lease books and rotation counters so rotation order is deterministic."""
    from apps.providers.services import _redis

    def wipe():
        for key in _redis().scan_iter("sb:provider-*"):
            _redis().delete(key)

    wipe()
    yield
    wipe()
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401,E402 (portal user fixtures)
