""""Talk to this agent" in a real browser: headless Chromium with a fake microphone playing a
caller fixture (`--use-file-for-fake-audio-capture`), the page's AudioWorklet sending it to
/ws/test-call/ on daphne, the OpenAI double as the agent's providers. The page shows the
greeting, the caller's words, the answer and the turn's latencies while the call runs, plays
the agent's audio, and the call is recorded as a test call. Also the editor's voice preview
(Piper, the embedded voice)."""
from __future__ import annotations

import io
import time
import wave

import numpy as np
import pytest
from django_tenants.utils import tenant_context

from devtools.doubles.audio import FIXTURES_DIR, read_wav, resample_linear, wav_bytes
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, login, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

GREETING = "Hello, Shop and Co here."
ANSWER = "This is the assistant of the shop."
MIC_RATE = 48000


@pytest.fixture(scope="module")
def caller_wav(tmp_path_factory):
    """The fake microphone: 4 s of silence, "Hello, who is this?", then 16 s of silence (Chromium loops
    the file; the call is over before it comes round again). 16-bit PCM at 48 kHz, what Chromium reads best."""
    pcm, rate = read_wav(FIXTURES_DIR / "hello.wav")
    speech = resample_linear(pcm, rate, MIC_RATE)
    path = tmp_path_factory.mktemp("fake-mic") / "caller.wav"
    path.write_bytes(wav_bytes(bytes(MIC_RATE * 2 * 4) + speech + bytes(MIC_RATE * 2 * 16), MIC_RATE))
    return path


@pytest.fixture(scope="module")
def fake_mic_browser(chromium, caller_wav):
    """A second Chromium from the same Playwright (one sync Playwright per thread), with the fake microphone."""
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={caller_wav}", "--autoplay-policy=no-user-gesture-required",
    ])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def llm():
    from devtools.doubles.openai_server import OpenAIDouble, Rule

    with OpenAIDouble(rules=[Rule(when="who is this", reply=ANSWER)]) as double:
        yield double


@pytest.fixture(scope="module")
def shop_agent(shop, llm, django_db_blocker):
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount

    with django_db_blocker.unblock(), tenant_context(shop["client"]):
        ProviderAccount.objects.create(provider="openai_compatible", api_key="sk-double", base_url=llm.base_url)
        return agent_save(
            name="Front desk", greeting=GREETING, system_prompt="You answer the phone for Shop & Co.",
            stt_provider="openai_compatible", stt_settings={"model": "whisper-1"},
            llm_provider="openai_compatible", llm_settings={"model": "gpt-4o-mini"},
            tts_provider="openai_compatible", tts_settings={"voice": "alloy", "model": "gpt-4o-mini-tts"},
        )


def _wait_text(page, element_id: str, text: str) -> None:
    page.wait_for_function("([id, text]) => (document.getElementById(id) || {}).textContent === text",
                           arg=[element_id, text])


def _text(page, selector: str) -> str:
    return page.evaluate(f"(document.querySelector({selector!r}) || {{}}).textContent || ''")


def test_talk_to_this_agent_with_a_fake_microphone(fake_mic_browser, shop, shop_agent, llm, django_db_blocker):
    from apps.calls.models import Call

    context = fake_mic_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/agents/{shop_agent.pk}/")
    page.click("#talk-to-agent")
    page.wait_for_url(f"**/agents/{shop_agent.pk}/talk/")
    page.click("#talk-start")

    # The greeting: its words on the page and its audio through the speaker, before the caller speaks.
    _wait_text(page, "turn-0-agent", f"Agent:{GREETING}")
    page.wait_for_function("window.talkStats.audioBytes > 0")
    assert _text(page, "#turn-0-agent .text") == GREETING
    # The fake microphone says its line: the transcript, the answer and the turn's latencies appear live.
    _wait_text(page, "turn-1-caller", "You:Hello, who is this?")
    _wait_text(page, "turn-1-agent", f"Agent:{ANSWER}")
    page.wait_for_function("window.talkStats.turns[1] && window.talkStats.turns[1].voice_to_voice_ms !== null")
    live = page.evaluate("window.talkStats.turns[1]")
    cells = page.eval_on_selector_all("#latency-1 td", "cells => cells.map(c => c.textContent)")
    assert cells == ["1", f"{live['stt_final_ms']} ms", f"{live['llm_ttft_ms']} ms", f"{live['tts_ttfb_ms']} ms",
                     f"{live['voice_to_voice_ms']} ms"]
    assert page.evaluate("window.talkStats.audioMs") > 400  # the greeting and the answer (tones of 20 ms a character)
    screenshot(page, "talk-to-agent")
    page.click("#talk-stop")
    page.wait_for_function("window.talkStats.ended === 'caller_hung_up' && window.talkStats.closeCode === 1000")
    assert page.inner_text("#talk-status") == "Call ended (caller hung up)."
    assert errors == []

    with django_db_blocker.unblock(), tenant_context(shop["client"]):
        call = None
        for _ in range(50):
            call = Call.objects.filter(is_test=True).first()
            if call is not None and call.ended_at is not None and call.recording:
                break
            time.sleep(0.2)
        assert (call.is_test, call.direction, call.agent_id, call.end_reason) == (True, "web", shop_agent.pk,
                                                                                   "caller_hung_up")
        turns = [(t.index, t.user_text, t.bot_text) for t in call.turns.order_by("index")]
        with call.recording.open("rb") as recording, wave.open(io.BytesIO(recording.read())) as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
            stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert turns == [(0, "", GREETING), (1, "Hello, who is this?", ANSWER)]
    assert np.abs(stereo.astype(np.int32)).max(axis=0).min() > 1000  # the microphone left, the agent right

    # Listed among the calls with a "test" badge.
    page.goto(f"{shop['url']}/calls/?direction=web")
    assert page.locator("table.calls tbody tr").count() == 1
    assert page.inner_text("table.calls tbody tr .badge.test") == "test"
    context.close()


def test_preview_voice_in_the_agent_editor(page, shop, shop_agent):
    login(page, shop["url"], "admin@shop.test")
    page.goto(f"{shop['url']}/agents/{shop_agent.pk}/edit/")
    page.select_option("select[name=tts_provider]", "piper")
    page.fill("input[name=tts_model]", "")
    page.fill("input[name=tts_voice]", "")
    with page.expect_response(lambda r: r.url.endswith("/voice-preview/"), timeout=60_000) as answer:
        page.click("#preview-voice")
    response = answer.value
    assert (response.status, response.headers["content-type"]) == (200, "audio/wav")
    # The page played what it got: the greeting, over a second of speech (Playwright keeps no body of a
    # response the page read as a blob, so the player's own reading of the WAV is what is checked).
    page.wait_for_function("document.getElementById('voice-preview').duration > 1")
    assert page.evaluate("document.getElementById('voice-preview').src").startswith("blob:")
    assert page.is_visible("#voice-preview")

    # A voice the vendor does not know is refused with the reason, and nothing is saved.
    page.select_option("select[name=tts_provider]", "openai_compatible")
    page.fill("input[name=tts_voice]", "alloy")
    page.fill("textarea[name=tts_settings]", '{"speed": "fast"}')
    with page.expect_response(lambda r: r.url.endswith("/voice-preview/")) as answer:
        page.click("#preview-voice")
    assert answer.value.status == 400
    page.wait_for_function("document.getElementById('voice-preview-status').classList.contains('field-error')")
    assert "speed" in page.inner_text("#voice-preview-status")
