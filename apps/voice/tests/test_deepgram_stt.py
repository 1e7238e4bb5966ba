"""A streaming STT on the call path: Pipecat's Deepgram service (what the `deepgram` provider module
builds) against the Deepgram `/v1/listen` double over a real websocket. Interim results arrive while
the caller talks; the interruption is decided on the words themselves, before the caller finishes."""
from __future__ import annotations

import asyncio

import pytest

from apps.voice.testing import caller_line, teach_transcripts
from apps.voice.tests.test_session import fixture_pcm
from apps.voice.tests.test_turns import INTERRUPTION, LONG_REPLY, finish, say
from devtools.doubles.audio import read_wav
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.transcripts import TranscriptBook
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def double():
    with OpenAIDouble(rules=[Rule(when="opening hours", reply=LONG_REPLY), Rule(when="wrong", reply="Sorry.")]) as dbl:
        teach_transcripts(dbl.book, INTERRUPTION, "Mm-hmm.")
        yield dbl


async def start_call(double, **config):
    from apps.voice.config import VoiceConfig
    from apps.voice.testing import PlainMediaServer

    server = await PlainMediaServer(base_url=double.base_url, config=VoiceConfig(**config), stt="deepgram").start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    return server, caller


def test_the_book_hears_the_beginning_of_an_utterance():
    from devtools.doubles.audio import FIXTURES_DIR

    book = TranscriptBook.from_fixtures()
    pcm, rate = read_wav(FIXTURES_DIR / "book-appointment.wav")
    full = "I would like to book an appointment for Tuesday afternoon."
    assert book.transcribe(pcm, rate) == full
    half = book.transcribe_so_far(pcm[: len(pcm) // 4 * 2], rate)
    assert half and full.startswith(half) and len(half.split()) < len(full.split())
    assert book.transcribe_so_far(pcm, rate) == full
    assert book.transcribe_so_far(pcm[: int(rate * 0.05) * 2], rate) == ""  # too little to tell


async def test_a_call_transcribed_by_the_streaming_stt(double):
    server, caller = await start_call(double)
    utterance = await say(caller, fixture_pcm("opening-hours.wav"), "opening hours")
    await caller.wait_for_agent_audio(after=utterance.speech_end_at)
    hooks = await finish(server, caller)

    [listen] = double.requests_of("deepgram_listen")
    assert (listen["query"]["encoding"], listen["query"]["sample_rate"], listen["query"]["interim_results"]) == (
        ["linear16"], ["8000"], ["true"])
    interims = [r["transcript"] for r in listen["results"] if not r["is_final"]]
    finals = [r["transcript"] for r in listen["results"] if r["is_final"] and r["transcript"]]
    assert finals == ["What are your opening hours on Saturday?"]
    assert interims and all(finals[0].startswith(text) for text in interims)
    assert [chat["user_text"] for chat in double.requests_of("chat")] == ["What are your opening hours on Saturday?"]
    assert hooks.turns[0]["user_text"] == "What are your opening hours on Saturday?"


async def test_interim_words_stop_the_agent_before_the_caller_finishes(double):
    server, caller = await start_call(double)
    opening = await say(caller, fixture_pcm("opening-hours.wav"), "opening hours")
    reply_started = await caller.wait_for_agent_audio(after=opening.speech_end_at)
    await asyncio.sleep(1.0)
    ack = await say(caller, caller_line("Mm-hmm."), "Mm-hmm.")
    await asyncio.sleep(0.8)
    assert [at for at in caller.clears if at > reply_started] == []  # one word, an acknowledgement
    interruption = await say(caller, caller_line(INTERRUPTION), INTERRUPTION)
    await caller.wait_for_agent_audio(after=interruption.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    speech_start = interruption.started_at + 0.2  # caller_line leads with 0.2 s of silence
    [clear_at] = [at for at in caller.clears if at > ack.speech_end_at]
    assert speech_start < clear_at < interruption.speech_end_at
    listen = double.requests_of("deepgram_listen")[0]
    # The acknowledgement's own final result can arrive late, after the interruption began (a loaded
    # machine): only results that are words of the interruption count here.
    words_at_clear = [r["transcript"] for r in listen["results"] if interruption.started_at < r["at"] <= clear_at
                      and r["transcript"] and r["transcript"] != "Mm-hmm."]
    # Decided on the words: the clear followed Deepgram's "No" (not an acknowledgement), not seconds of sound.
    # (Interim or final, with or without its comma: "No", "No,", "no,".)
    assert words_at_clear and words_at_clear[0].split()[0].strip(",.").lower() == "no"
    assert hooks.turns[-1]["user_text"] == INTERRUPTION


async def test_the_first_word_that_is_not_an_acknowledgement_stops_the_agent_before_the_second(double):
    """"No, ... that's wrong." with a short breath after "No" (shorter than the endpointing, so no final result
    comes in it): the agent is cleared on the interim "No" alone, before any result holds the caller's second
    word. Acknowledgements said over the agent before it, "I see." among them ("I" alone could begin one),
    clear nothing."""
    from apps.voice.config import VoiceConfig
    from apps.voice.testing import PlainMediaServer, deepgram_stt, silence, spoken, teach_transcripts

    teach_transcripts(double.book, "I see.")
    double.rules.insert(0, Rule(when="opening hours", reply=f"{LONG_REPLY} {LONG_REPLY}"))  # ~10 s: still talking
    breath = 0.4  # below the VAD's 0.5 s stop and the double's 0.6 s utterance gap
    first, rest = spoken("No,"), spoken("that's wrong.")
    double.book.register(first + silence(breath) + rest, 8000, "No, that's wrong.",
                         word_ends=(len(first) / 16000, (len(first) + len(spoken("that's"))) / 16000 + breath))
    server = await PlainMediaServer(base_url=double.base_url, config=VoiceConfig(),
                                    stt_factory=lambda: deepgram_stt(double.base_url, endpointing_ms=1000)).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    opening = await say(caller, fixture_pcm("opening-hours.wav"), "opening hours")
    reply_started = await caller.wait_for_agent_audio(after=opening.speech_end_at)
    listen = double.requests_of("deepgram_listen")[0]

    async def final_result(text: str) -> None:  # the double has transcribed all of it
        while not any(r["is_final"] and r["transcript"] == text for r in listen["results"]):
            await asyncio.sleep(0.05)

    for ack in ("Mm-hmm.", "I see."):
        await asyncio.sleep(0.5)
        await say(caller, caller_line(ack), ack)
        await asyncio.wait_for(final_result(ack), 10)
    await asyncio.sleep(0.3)  # what the STT sent has reached the turn strategy
    clears_over_acknowledgements = [at for at in caller.clears if at > reply_started]
    interruption = await say(caller, silence(0.2) + first + silence(breath) + rest + silence(0.3), "No, that's wrong.")
    await caller.wait_for_agent_audio(after=interruption.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert clears_over_acknowledgements == []
    assert [r["transcript"] for r in listen["results"] if r["transcript"] == "I"]  # "I" came alone first
    [clear_at] = [at for at in caller.clears if at > interruption.started_at]
    heard = [r for r in listen["results"] if r["at"] > interruption.started_at and r["transcript"]]
    # Ordering, not timing: the double's results came in this order whatever the load, and the clear came
    # between the first word's interim and the first result holding the second word (0.6 s or more later).
    assert (heard[0]["transcript"], heard[0]["is_final"]) == ("No,", False)
    second_word_at = min(r["at"] for r in heard if r["transcript"] != "No,")
    assert heard[0]["at"] <= clear_at < second_word_at
    assert hooks.turns[-1]["user_text"] == "No, that's wrong."
