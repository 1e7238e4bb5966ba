"""Browser tests: Playwright for Python driving Debian's Chromium (/usr/bin/chromium) against a real daphne on
the test database. Playwright's own browser download is not used. Without Chromium these tests are skipped
(install it with `apt-get install -y chromium`; `.ci/run` does)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Screenshots go under var/ (ignored); SCREENSHOTS_DIR=docs/screenshots refreshes the README's.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
SLUG = "shop"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def chromium(request):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}: `apt-get install -y chromium` "
                    "(or set CHROMIUM_PATH); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    # daphne (session-wide, shared with other live tests) starts first, so it never inherits the variable below.
    request.getfixturevalue("daphne_server")
    # Playwright's sync API keeps an event loop running in this thread; Django would then refuse the
    # test's own (synchronous) database work. Allowed only while a browser module runs.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shop(chromium, django_db_setup, django_db_blocker, daphne_server):
    """A client of its own ("shop", committed, so daphne sees it) with a month of calls; dropped afterwards."""
    from django_tenants.utils import tenant_context

    from apps.tenancy.services import client_create

    with django_db_blocker.unblock():
        _drop_shop()
        client, _, admin = client_create(slug=SLUG, name="Shop & Co", domain=f"{SLUG}.localhost",
                                         admin_email="admin@shop.test", admin_password=PASSWORD)
        with tenant_context(client):
            calls = _month_of_calls(client)
    base = f"http://{SLUG}.localhost:{daphne_server['port']}"
    try:
        yield {"client": client, "admin": admin, "url": base, "calls": calls, "server": daphne_server}
    finally:
        with django_db_blocker.unblock():
            _drop_shop()


def _drop_shop():
    from django.db import connection, transaction

    from apps.billing.models import BillingAccount, RateCard, UsageEvent
    from apps.tenancy.models import Client
    from apps.tenancy.services import client_delete

    connection.set_schema_to_public()
    client = Client.objects.filter(slug=SLUG).first()
    if client is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # The ledger is append-only (a trigger refuses DELETE); this test client's rows go with it.
        cursor.execute("SET LOCAL session_replication_role = replica")
        UsageEvent.objects.filter(client=client).delete()
    RateCard.objects.filter(client=client).delete()
    BillingAccount.objects.filter(client=client).delete()
    client_delete(client=client)


def _month_of_calls(client) -> dict:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.billing.models import BillingAccount
    from apps.calls.services import call_recording_save
    from apps.portal.tests.data import client_rate_card, finished_call, silent_wav, turn

    client_rate_card(client)
    BillingAccount.objects.create(client=client, soft_cap_minutes=Decimal("40"), hard_cap_minutes=Decimal("60"))
    now = timezone.now()
    calls = {}
    for index, (seconds, reason, v2v) in enumerate([(95, "caller_hung_up", 820), (240, "agent_ended", 640),
                                                    (35, "transfer", 1150), (180, "caller_hung_up", 700),
                                                    (60, "idle_timeout", 900), (310, "agent_ended", 760)]):
        calls[index] = finished_call(
            client, number="+15550009000", from_number=f"+1555700{index:04d}", seconds=seconds, end_reason=reason,
            tts_characters=800 + 100 * index,
            turns=[turn(0, at=now + timedelta(seconds=1), said="Hi, I'd like to book a table for four",
                        answered="Of course. For which day?", v2v=v2v),
                   turn(1, at=now + timedelta(seconds=12), said="Friday at eight", answered="Booked. See you then!",
                        v2v=v2v + 120, llm=380)],
            days_ago=index % 4,
        )
    call_recording_save(call_id=calls[0].pk, wav_bytes=silent_wav(30), transcript="Caller: Hi\nAgent: Of course")
    return calls


def login(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
