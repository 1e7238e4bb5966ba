"""Turn taking over a real Twilio Media Streams websocket (apps.voice.testing): an
acknowledgement while the agent talks does not stop or change its reply, a real
interruption stops it quickly and is answered, a pause mid-sentence is not a turn."""
from __future__ import annotations

import asyncio

import pytest

from apps.voice.config import VoiceConfig
from apps.voice.smart_turn import SharedSmartTurnAnalyzer
from apps.voice.testing import PlainMediaServer, caller_line, teach_transcripts
from apps.voice.turns import acknowledgements_for, content_words, is_acknowledgement, sounds_unfinished
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(90)

LONG_REPLY = " ".join(["We are open from nine to five on Saturday."] * 6)  # ~5 s of agent audio
ACKS = ("Mm-hmm.", "Okay.", "Yeah.")
INTERRUPTION = "No no, that's wrong."
ACCOUNT = ("My account number is", "four five, seven two.")


@pytest.fixture
def double():
    with OpenAIDouble(
        rules=[
            Rule(when="opening hours", reply=LONG_REPLY),
            Rule(when="wrong", reply="Sorry, let me correct that."),
            Rule(when="who is this", reply="This is Acme Dental."),
            Rule(when="account number", reply="Thanks, I found your account."),
        ]
    ) as double:
        teach_transcripts(double.book, *ACKS, INTERRUPTION, *ACCOUNT)
        yield double


async def start_call(double, **config):
    server = await PlainMediaServer(base_url=double.base_url, config=VoiceConfig(**config)).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    return server, caller


async def say(caller, pcm: bytes, label: str):
    utterance = await caller.say(pcm, label)
    await utterance.done.wait()
    return utterance


async def finish(server, caller):
    await caller.hang_up()
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()
    return hooks


async def long_answer_playing(caller, fixture_say):
    await fixture_say(caller, "opening-hours.wav")
    return await caller.wait_for_agent_audio(after=caller.last_speech_end)


async def _say_fixture(caller, name):
    from apps.voice.tests.test_session import fixture_pcm

    return await say(caller, fixture_pcm(name), name)


@pytest.mark.parametrize("ack", ["Mm-hmm.", "Okay."])
async def test_an_acknowledgement_keeps_the_agent_talking_and_stays_in_the_context(double, ack):
    server, caller = await start_call(double, end_of_turn_model=True)  # (opt-in; the trace says it decided)
    reply_started = await long_answer_playing(caller, _say_fixture)
    await asyncio.sleep(1.0)
    await say(caller, caller_line(ack), ack)
    await caller.wait_for_agent_quiet(quiet_secs=0.8)
    heard = caller.audible_agent_secs(after=reply_started - 0.001)
    utterance = await _say_fixture(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=utterance.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert caller.clears == []  # nothing was cut off
    # The whole reply played: the double speaks 20 ms per character, one unbroken burst.
    assert heard == pytest.approx(len(LONG_REPLY) * 0.02, abs=0.25)
    chats = double.requests_of("chat")
    assert [chat["user_text"] for chat in chats] == ["What are your opening hours on Saturday?", "Hello, who is this?"]
    # The acknowledgement is in the conversation where it was said, after the reply, unanswered.
    assert [(m["role"], m["content"]) for m in chats[1]["messages"][1:]] == [
        ("user", "What are your opening hours on Saturday?"),
        ("assistant", LONG_REPLY),
        ("user", ack),
        ("user", "Hello, who is this?"),
    ]
    answer, hello = hooks.turns
    assert (answer["bot_text"], answer["interrupted"], answer["backchannels"]) == (LONG_REPLY, False, [ack])
    assert answer["end_of_turn"] == "end_of_turn_model"  # Smart Turn heard a finished question
    assert hello["bot_text"] == "This is Acme Dental."
    assert hooks.transcript.splitlines()[:3] == [
        "Caller: What are your opening hours on Saturday?", f"Agent: {LONG_REPLY}", f"Caller: {ack}"]


async def test_with_interruptions_at_any_speech_an_acknowledgement_cuts_the_agent_off(double):
    """Today's behaviour, still there for agents set to "any speech" (0 words)."""
    server, caller = await start_call(double, interrupt_after_words=0)
    await long_answer_playing(caller, _say_fixture)
    await asyncio.sleep(1.0)
    ack = await say(caller, caller_line("Mm-hmm."), "Mm-hmm.")
    await caller.wait_for_agent_quiet(quiet_secs=0.8)
    hooks = await finish(server, caller)

    assert len([at for at in caller.clears if ack.started_at < at < ack.speech_end_at + 0.3]) == 1
    assert hooks.turns[0]["interrupted"] is True


async def test_a_real_interruption_stops_the_agent_quickly_and_is_answered(double):
    server, caller = await start_call(double)
    reply_started = await long_answer_playing(caller, _say_fixture)
    await asyncio.sleep(1.0)
    interruption = await say(caller, caller_line(INTERRUPTION), INTERRUPTION)
    await caller.wait_for_agent_audio(after=interruption.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    speech_start = interruption.started_at + 0.2  # caller_line leads with 0.2 s of silence
    [clear_at] = [at for at in caller.clears if at > reply_started]
    # Stopped while the caller was still talking (the benchmark measures how fast: typically
    # 0.6-0.9 s, once "no no," is followed by more speech).
    assert speech_start < clear_at < interruption.speech_end_at
    assert [f for f in caller.agent_frames if clear_at + 0.06 < f.at < clear_at + 0.5 and f.audible] == []
    answer, correction = hooks.turns
    assert answer["interrupted"] is True and answer["bot_text"] != LONG_REPLY
    assert (correction["user_text"], correction["bot_text"]) == (INTERRUPTION, "Sorry, let me correct that.")
    assert [chat["user_text"] for chat in double.requests_of("chat")][-1] == INTERRUPTION


@pytest.mark.parametrize(("end_of_turn_model", "replies"), [(True, 1), (False, 2)])
async def test_a_pause_mid_sentence_is_not_the_end_of_the_turn(double, end_of_turn_model, replies):
    """0.8 s after "my account number is": with the end-of-turn check the agent waits
    for the digits; with silence alone (before) it answered the half sentence."""
    before = {} if end_of_turn_model else {"interrupt_after_words": 0}  # today's settings
    server, caller = await start_call(double, end_of_turn_model=end_of_turn_model, **before)
    await asyncio.sleep(0.3)
    utterance = await say(caller, caller_line(*ACCOUNT, pause_secs=0.8), "account")
    first_audio = await caller.wait_for_agent_audio(after=utterance.started_at)
    await caller.wait_for_agent_audio(after=utterance.speech_end_at)  # the answer to the whole number
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    chats = double.requests_of("chat")
    assert len(chats) == replies
    if end_of_turn_model:
        assert first_audio > utterance.speech_end_at  # nothing was said into the pause
        assert chats[0]["user_text"] == "My account number is four five, seven two."
        [turn] = hooks.turns
        assert (turn["user_text"], turn["bot_text"]) == ("My account number is four five, seven two.",
                                                         "Thanks, I found your account.")
        # It ends on digits read out one by one: the agent gave the caller the longest pause for
        # another group before answering.
        assert turn["end_of_turn"] == "silence"
    else:
        assert first_audio < utterance.speech_end_at  # the agent talked over the rest of the number
        assert [chat["user_text"] for chat in chats] == list(ACCOUNT)
        assert [turn["end_of_turn"] for turn in hooks.turns] == ["silence", "silence"]


def test_acknowledgements_are_told_from_content():
    english = acknowledgements_for("en-US")
    assert is_acknowledgement("Mm-hmm.", english) and is_acknowledgement("Okay, yeah.", english)
    assert is_acknowledgement("I see.", english) and is_acknowledgement("Uh huh", english)
    assert not is_acknowledgement("No.", english) and not is_acknowledgement("", english)
    assert content_words("Okay, but what about Sunday?", english) == ["but", "what", "about", "sunday"]
    assert is_acknowledgement("Vale, claro.", acknowledgements_for("es"))
    assert acknowledgements_for("en", ("Roger",)) == ("roger",)  # an agent's own list replaces the default
    assert acknowledgements_for("xx") == acknowledgements_for("en")


def test_a_sentence_that_plainly_goes_on_sounds_unfinished():
    assert sounds_unfinished("My account number is")
    assert sounds_unfinished("My account number is.")  # an STT's full stop does not end it
    assert sounds_unfinished("I'd like to book,") and sounds_unfinished("Well...")
    assert not sounds_unfinished("My account number is ready.")
    assert not sounds_unfinished("Thank you") and not sounds_unfinished("")
    assert sounds_unfinished("My account number is four five.") and sounds_unfinished("It's 4 5")
    assert not sounds_unfinished("I have two children.") and not sounds_unfinished("Room 12")
    assert sounds_unfinished("Mi número de cuenta es", "es")


def test_the_end_of_turn_model_is_loaded_once_per_process():
    first, second = SharedSmartTurnAnalyzer(), SharedSmartTurnAnalyzer()
    assert first._session is second._session
    assert first._model_executor is second._model_executor  # one thread for every call's inference


async def _interim_strategy(min_words: int):
    from apps.voice.turns import BargeInUserTurnStartStrategy

    strategy = BargeInUserTurnStartStrategy(min_words=min_words, acknowledgements=acknowledgements_for("en"))
    started = []

    async def on_started(_strategy, params):
        started.append(params.enable_interruptions)

    strategy.add_event_handler("on_user_turn_started", on_started)
    return strategy, started


def _interim(text):
    from pipecat.frames.frames import InterimTranscriptionFrame

    return InterimTranscriptionFrame(text=text, user_id="", timestamp="")


async def test_with_a_streaming_stt_the_first_word_that_is_not_an_acknowledgement_interrupts():
    """Interim transcripts (Deepgram, ...), the default (1 word): while the agent speaks, "No"
    takes the turn at once, "yeah but" at "but"; acknowledgements, and a word that may begin
    one ("I" of "I see"), do not; while the agent is silent, any words take the turn."""
    from pipecat.frames.frames import BotStartedSpeakingFrame, BotStoppedSpeakingFrame
    from pipecat.turns.types import ProcessFrameResult

    assert VoiceConfig().interrupt_after_words == 1
    strategy, started = await _interim_strategy(1)
    await strategy.process_frame(BotStartedSpeakingFrame())
    for text in ("Mm-hmm, okay yeah", "I", "I see", "Got", "Yeah", "Uh huh"):
        assert await strategy.process_frame(_interim(text)) == ProcessFrameResult.CONTINUE, text
    assert started == []
    assert await strategy.process_frame(_interim("Yeah but")) == ProcessFrameResult.STOP
    assert await strategy.process_frame(_interim("No")) == ProcessFrameResult.STOP
    assert await strategy.process_frame(_interim("I have")) == ProcessFrameResult.STOP
    assert started == [True, True, True]
    await strategy.process_frame(BotStoppedSpeakingFrame())
    assert await strategy.process_frame(_interim("Okay")) == ProcessFrameResult.STOP
    assert started == [True, True, True, True]


async def test_with_a_streaming_stt_an_agent_set_to_two_words_waits_for_the_second():
    from pipecat.frames.frames import BotStartedSpeakingFrame
    from pipecat.turns.types import ProcessFrameResult

    strategy, started = await _interim_strategy(2)
    await strategy.process_frame(BotStartedSpeakingFrame())
    assert await strategy.process_frame(_interim("Okay, wait")) == ProcessFrameResult.CONTINUE
    assert await strategy.process_frame(_interim("Okay, wait I")) == ProcessFrameResult.CONTINUE  # "I" may be "I see"
    assert started == []
    assert await strategy.process_frame(_interim("Okay, wait a")) == ProcessFrameResult.STOP
    assert started == [True]


def test_an_interim_transcript_that_may_end_inside_an_acknowledgement_does_not_count_its_tail():
    english = acknowledgements_for("en")
    assert content_words("I", english, partial=True) == []
    assert content_words("I", english) == ["i"]  # a final "I." is a word
    assert content_words("Okay got", english, partial=True) == []
    assert content_words("Okay got milk", english, partial=True) == ["got", "milk"]
    assert content_words("No I", english, partial=True) == ["no"]
    assert content_words("Mm", english, partial=True) == []  # "mm" or the start of "mm hmm": never counted
