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
