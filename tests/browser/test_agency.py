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


def _admin_login(page, shop) -> str:
    agency = f"http://localhost:{shop['server']['port']}"
    page.goto(f"{agency}/admin/login/")
    page.fill("input[name=username]", "owner@console.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#overview")
    return agency


def test_rate_card_copy_as_new_version(page, shop, owner):
    from apps.billing.models import RateCard

    agency = _admin_login(page, shop)
    card = RateCard.objects.get(client=shop["client"])
    page.goto(f"{agency}/admin/billing/ratecard/")
    page.check(f"input[name=_selected_action][value='{card.pk}']")
    page.select_option("select[name=action]", "copy_as_new_version")
    page.click("button[name=index]")
    message = page.inner_text("ul.messagelist")
    copy = RateCard.objects.filter(client=shop["client"]).exclude(pk=card.pk).get()
    assert message == f"Created {copy}; edit its prices before {copy.effective_from:%Y-%m}."
    page.click("ul.messagelist a")
    price = page.input_value("input[name$='unit_price']:visible >> nth=0")
    assert "E" not in price and price in ("0.06", "0.3")
    screenshot(page, "rate-card")


def test_agency_overview(page, shop, owner):
    _admin_login(page, shop)
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
