"""The client portal in a real browser (Chromium through Playwright)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import login, no_horizontal_scroll, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def _range() -> str:
    today = timezone.localdate()
    return f"since={today - timedelta(days=6)}&until={today}"


def test_dashboard_with_data(page, shop):
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/?{_range()}")
    assert page.inner_text("#tile-calls") == "6"
    assert page.inner_text("#tile-minutes") == "15.3"  # 920 s
    # Chart.js drew every chart from the vendored file (no CDN): each has its data points.
    page.wait_for_function("window.dashboardCharts && window.dashboardCharts.calls")
    per_day = page.evaluate("window.dashboardCharts.calls.data.datasets[0].data")
    assert len(per_day) == 7 and sum(per_day) == 6
    outcomes = page.evaluate("window.dashboardCharts.outcomes.data.labels")
    assert sorted(outcomes) == ["Agent ended", "Caller hung up", "Idle timeout", "Transferred"]
    canvas_width = page.evaluate("document.getElementById('chart-latency').width")
    assert canvas_width > 100
    assert page.get_attribute("#cap-meter", "aria-valuenow") == "25"  # 15.3 of 60 minutes
    screenshot(page, "dashboard")


def test_call_page_timeline_and_seek(page, shop):
    responses = []
    page.on("response", lambda response: responses.append(response) if "recording.wav" in response.url else None)
    login(page, shop["url"], "admin@shop.test")
    call = shop["calls"][0]
    page.goto(f"{shop['url']}/calls/{call.pk}/")
    assert page.locator(".tl-row").count() == 2
    assert page.locator(".tl-bar").count() == 2
    bar = page.locator("#turn-1 .tl-bar").bounding_box()
    assert bar["width"] > 0
    # Each turn's stages as a waterfall: STT, then LLM first token, then TTS first audio, left to right.
    stt, llm, tts = (page.locator(f"#turn-1 .wf-{css}").bounding_box() for css in ("stt", "llm", "tts"))
    assert stt["x"] < llm["x"] < tts["x"]
    assert llm["x"] == pytest.approx(stt["x"] + stt["width"], abs=1.5)
    page.wait_for_function("document.getElementById('recording').readyState >= 1")
    assert page.evaluate("document.getElementById('recording').duration") == pytest.approx(30, abs=0.1)
    offset_ms = int(page.get_attribute("#turn-1 .play-from", "data-offset-ms"))
    page.evaluate("() => { const audio = document.getElementById('recording'); window.seeked = new Promise("
                  "r => audio.addEventListener('seeked', () => r(audio.currentTime), {once: true})); }")
    page.click("#turn-1 .play-from")
    position = page.evaluate("window.seeked")
    assert position == pytest.approx(offset_ms / 1000, abs=0.5)
    assert any(response.status == 206 and response.headers.get("content-range", "").startswith("bytes ")
               for response in responses)
    screenshot(page, "call")


def test_calls_list_filters(page, shop):
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/calls/")
    assert page.locator("table.calls tbody tr").count() == 6
    page.select_option("select[name=end_reason]", "transfer")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**end_reason=transfer**")
    assert page.locator("table.calls tbody tr").count() == 1
    assert page.locator("table.calls tbody tr td").nth(6).inner_text() == "0:35"
    page.goto(f"{shop['url']}/calls/")
    screenshot(page, "calls")


def test_phone_width_has_no_horizontal_scroll(phone, shop):
    login(phone, shop["url"], "admin@shop.test")
    for path in ("/", "/calls/", f"/calls/{shop['calls'][0].pk}/", "/agents/",
                 f"/agents/{shop['calls'][0].agent_id}/edit/", "/numbers/", "/providers/", "/billing/invoices/",
                 "/api-keys/", "/team/"):
        phone.goto(f"{shop['url']}{path}")
        assert no_horizontal_scroll(phone), f"{path} scrolls sideways at 390 px"
    phone.goto(f"{shop['url']}/?{_range()}")
    screenshot(phone, "dashboard-phone")


def test_agent_editor_shows_errors_under_their_fields(page, shop):
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/agents/{shop['calls'][0].agent_id}/edit/")
    assert page.input_value("input[name=llm_model]") == "gpt-4o-mini"
    # The model picker suggests the chosen provider's models, and follows a change of provider.
    options = page.eval_on_selector_all("#llm-models option", "els => els.map(e => e.value)")
    assert "gpt-4.1-mini" in options
    page.fill("input[name=llm_temperature]", "7")
    page.fill("input[name=vad_stop_secs]", "60")
    page.select_option("select[name=language]", "fr")
    page.click("form.agent-form button[type=submit]")
    assert page.inner_text("#errors-llm_temperature") == "OpenAI LLM 'temperature' must be between 0 and 2, not 7.0."
    assert "between 0.1 and 5 seconds" in page.inner_text("#errors-vad_stop_secs")
    assert page.locator("ul.errorlist").count() == 2
    assert page.input_value("select[name=language]") == "fr"  # the input is kept
    screenshot(page, "agent-editor")


def test_invite_flow(page, chromium, shop, mailoutbox, committed_db):
    import re

    from apps.accounts.models import User
    from apps.accounts.tasks import send_invite_email

    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/team/")
    page.fill("form.invite input[name=email]", "Clerk@Shop.test")
    page.select_option("form.invite select[name=role]", "client_viewer")
    page.click("form.invite button[type=submit]")
    assert page.inner_text(".message") == "Invitation sent to clerk@shop.test."
    assert page.locator("tr[data-email='clerk@shop.test'] td").nth(2).inner_text() == "invited"
    screenshot(page, "team")
    # daphne queued the mail for a worker; this test is the worker.
    invited = User.objects.get(email="clerk@shop.test")
    assert send_invite_email.apply(args=(invited.pk, "admin@shop.test")).get() is True
    path = re.search(r"(/team/accept/\S+/)", mailoutbox[0].body).group(1)
    newcomer = chromium.new_context().new_page()
    newcomer.goto(f"{shop['url']}{path}")
    newcomer.fill("input[name=new_password1]", "clerks-own-secret-42")
    newcomer.fill("input[name=new_password2]", "clerks-own-secret-42")
    newcomer.click("main button[type=submit]")
    newcomer.wait_for_url("**/login/")
    login(newcomer, shop["url"], "clerk@shop.test", "clerks-own-secret-42")
    assert newcomer.url == f"{shop['url']}/"
    assert "Team" not in newcomer.inner_text("header nav")  # a viewer
    newcomer.context.close()
    # The admin makes the clerk an admin, then removes them.
    page.reload()
    with page.expect_navigation():
        page.select_option("tr[data-email='clerk@shop.test'] select[name=role]", "client_admin")
    assert page.inner_text(".message") == "clerk@shop.test is now client admin."
    assert User.objects.get(email="clerk@shop.test").role == "client_admin"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("tr[data-email='clerk@shop.test'] button.remove")
    page.wait_for_selector("tr[data-email='clerk@shop.test']", state="detached")
    assert not User.objects.filter(email="clerk@shop.test").exists()


def test_api_docs_render_offline(page, shop):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/api-keys/")
    page.click("#api-docs-link")
    page.wait_for_selector(".swagger-ui .info .title")
    assert page.title().endswith(" API")
    assert page.inner_text(".swagger-ui .info .title").startswith(page.title())
    assert page.locator(".opblock-tag", has_text="calls").count() >= 1
    # Everything came from this server: no CDN.
    assert requested and all(url.startswith(shop["url"]) or url.startswith("data:") for url in requested)
    screenshot(page, "api-docs")
