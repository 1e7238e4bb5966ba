"""The agency console in a real browser."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


@pytest.fixture
def owner(committed_db):
    from apps.accounts.models import User

    user = User(username="owner@console.test", email="owner@console.test", role=User.Role.AGENCY_OWNER)
    user.set_password(PASSWORD)
    user.save()
    yield user
    user.delete()


def test_agency_overview(page, shop, owner):
    agency = f"http://localhost:{shop['server']['port']}"
    page.goto(f"{agency}/admin/login/")
    page.fill("input[name=username]", "owner@console.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#overview")
    row = page.locator("#overview tr[data-client='shop'] td")
    # The month's calls (the test data spreads them over four days, which may start last month).
    from decimal import ROUND_HALF_UP, Decimal

    from django.utils import timezone

    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = [call for call in shop["calls"].values() if call.created_at >= month_start]
    minutes = sum(call.duration_secs for call in this_month) / 60
    assert row.nth(0).inner_text() == "Shop & Co"
    assert row.nth(1).inner_text() == str(len(this_month))
    assert row.nth(2).inner_text() == f"{minutes.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}"
    assert row.nth(3).inner_text() == "3.02 USD"
    assert row.nth(5).inner_text().strip() == "25%"
    screenshot(page, "agency-overview")
    page.click("text=Calls across clients →")
    page.wait_for_selector("#agency-calls")
    assert page.locator("#agency-calls tbody tr td:nth-child(2)", has_text="Shop & Co").count() == 6
