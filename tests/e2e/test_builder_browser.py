"""The workflow builder in a real browser (Playwright driving Debian's headless
Chromium) against daphne: a client admin logs in, draws a three-node agent (adds a
conversation and an end node, drags two connections, writes the conditions), sees a
problem on its node, publishes; then a simulated call over the Twilio protocol runs
the published version and walks the three nodes.

Skipped, saying why, when /usr/bin/chromium or the playwright package is missing."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys

import pytest
from django_tenants.utils import tenant_context

from conftest import BASE_DIR, PASSWORD

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser test: {CHROMIUM} is absent (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser test: the playwright package is not installed (requirements/test.in)")
    # Playwright's sync API keeps an event loop running in this thread; Django would take
    # the test's own ORM calls for calls from async code. They are not: allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def collected_static(django_db_setup):
    """daphne serves static files through whitenoise from STATIC_ROOT, as in production."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=BASE_DIR, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"})


@pytest.fixture
def clinic(committed_db):
    from apps.agents.models import Agent
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount
    from apps.tenancy.models import Client

    tenant = Client.objects.get(slug="acme")
    with tenant_context(tenant):
        ProviderAccount.objects.get_or_create(provider="openai_compatible",
                                              defaults={"api_key": "sk-double", "base_url": "http://127.0.0.1:9/v1"})
        agent = agent_save(
            name="Clinic", greeting="Hi, Acme Dental.", system_prompt="You answer the phone for Acme Dental.",
            stt_provider="openai_compatible", stt_settings={"model": "whisper-1"},
            llm_provider="openai_compatible", llm_settings={"model": "gpt-4o-mini"},
            tts_provider="openai_compatible", tts_settings={"voice": "alloy", "model": "gpt-4o-mini-tts"})
    yield tenant, agent
    with tenant_context(tenant):
        Agent.objects.update(current_version=None)
        Agent.objects.all().delete()
        ProviderAccount.objects.all().delete()


def _drag(page, source, target):
    box_from, box_to = source.bounding_box(), target.bounding_box()
    page.mouse.move(box_from["x"] + box_from["width"] / 2, box_from["y"] + box_from["height"] / 2)
    page.mouse.down()
    page.mouse.move(box_to["x"] + box_to["width"] / 2, box_to["y"] + box_to["height"] / 2, steps=8)
    page.mouse.up()


def _set(page, selector, value):
    field = page.locator(selector)
    field.fill(value)
    field.dispatch_event("change")


def _node(page, graph_id):
    return page.locator(".drawflow-node", has=page.locator(f"text='{graph_id}'")).first


def test_build_publish_and_call_a_three_node_agent(browser, collected_static, daphne_server, clinic):
    from apps.agents.models import Agent
    from apps.agents.selectors import agent_runtime_config
    from apps.voice.launch import voice_config
    from apps.voice.testing import PlainMediaServer
    from apps.voice.tests.test_session import fixture_pcm
    from devtools.doubles.openai_server import OpenAIDouble, Rule
    from devtools.doubles.twilio_caller import TwilioCaller

    tenant, agent = clinic
    base = f"http://acme.localhost:{daphne_server['port']}"
    page = browser.new_page()
    page.set_default_timeout(60_000)  # a loaded CI machine: the first page load compiles templates, static files
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/login/?next=/agents/{agent.pk}/builder/")
    page.fill("input[name=username]", "admin@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_selector("#canvas .drawflow-node")
    except Exception:
        raise AssertionError(f"the builder did not draw: {errors} {page.url} {page.content()[:300]}") from None
    assert page.evaluate("typeof Drawflow") == "function"  # served from /static/vendor, no network

    for node_type in ("conversation", "end"):
        page.select_option("#new-node-type", node_type)
        page.click("#add-node")
    _set(page, "#panel [data-key=line]", "Goodbye from the clinic.")  # the end node just added is selected
    _node(page, "conversation 1").click()
    _set(page, "#panel [data-key=prompt]", "Help the caller book an appointment.")
    _set(page, "#panel [data-key=name]", "Booking")

    start = page.locator(".drawflow-node.start")
    booking = page.locator(".drawflow-node.conversation")
    bye = page.locator(".drawflow-node.end")
    _drag(page, start.locator(".output_1"), booking.locator(".input_1"))
    _drag(page, booking.locator(".output_1"), bye.locator(".input_1"))
    assert page.locator(".connection").count() == 2

    page.click("#save-draft")  # the edges have no conditions yet: problems shown on their nodes
    page.wait_for_function("document.getElementById('builder-status').textContent.includes('problem')")
    assert "needs a condition" in start.inner_text()

    start.click()
    _set(page, "#panel [data-edge] [data-key=condition]", "The caller wants an appointment")
    booking.click()
    _set(page, "#panel [data-edge] [data-key=condition]", "The caller is done")
    page.click("#publish")
    page.wait_for_function("document.getElementById('builder-status').textContent.startsWith('Published')")
    assert page.inner_text("#builder-status") == "Published as version 2."
    assert errors == []
    page.close()

    with tenant_context(tenant):
        published = Agent.objects.get(pk=agent.pk).current_version
        graph = published.graph
        runtime = agent_runtime_config(agent_version=published)
    assert [(n["id"], n["type"]) for n in graph["nodes"]] == [
        ("global", "global"), ("start", "start"), ("conversation_1", "conversation"), ("end_1", "end")]
    assert [(e["from"], e["to"], e["condition"]) for e in graph["edges"]] == [
        ("start", "conversation_1", "The caller wants an appointment"),
        ("conversation_1", "end_1", "The caller is done")]

    async def call():
        with OpenAIDouble(rules=[
            Rule(when="book an appointment", tool="go_to_conversation_1", offered_only=True),
            Rule(when="book an appointment", reply="Tuesday at two works."),
            Rule(when="that works", tool="go_to_end_1", offered_only=True),
        ]) as double:
            server = await PlainMediaServer(base_url=double.base_url, config=voice_config(runtime)).start()
            caller = TwilioCaller(server.url)
            await caller.connect()
            await caller.wait_for_agent_audio(timeout=10)
            await caller.wait_for_agent_quiet()
            for name in ("book-appointment.wav", "yes.wav"):
                utterance = await caller.say(fixture_pcm(name), name)
                await utterance.done.wait()
                if name != "yes.wav":
                    await caller.wait_for_agent_audio(after=utterance.speech_end_at)
                    await caller.wait_for_agent_quiet(quiet_secs=0.8)
            await caller.wait_closed(timeout=15)
            hooks = server.hooks[0]
            await asyncio.wait_for(hooks.ended.wait(), 15)
            await server.stop()
            return hooks, [r["text"] for r in double.requests_of("speech")]

    # A thread of its own: Playwright's loop runs in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hooks, speech = pool.submit(asyncio.run, call()).result()
    assert [turn["node"] for turn in hooks.turns] == ["start", "conversation_1", "end_1"]
    assert speech == ["Hi, Acme Dental.", "Tuesday at two works.", "Goodbye from the clinic."]
    assert hooks.end["end_reason"] == "agent_ended"


