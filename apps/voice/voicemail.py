"""Voicemail on outbound calls: who picked up, a person or an answering machine?

Two witnesses, whichever speaks first:
- the carrier's answering-machine detection (asked for at dial time; its verdict is
  written to the call record by the carrier's status webhook, and the session reads it);
- `classify_greeting`, rules over the callee's first words ("you have reached ...,
  leave a message after the tone"), run by `VoicemailDetector`, a Pipecat processor
  right after STT. It touches no database: it calls the session back.

A person who says "he's not available right now, can I take a message?" is a person:
offering to take a message, asking who is calling, are things machines do not say, and
they win over the machine phrases.

On a machine the detector swallows the greeting's transcripts (the LLM never answers a
recording), the session stops the agent mid-sentence, and once the callee has been
quiet for `quiet_secs` (the greeting is over: the beep is short) the session says the
agent's voicemail message and hangs up with end reason "voicemail".
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    StartFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

HUMAN = "human"
MACHINE = "machine"
UNKNOWN = "unknown"

# What a person says and a greeting does not; checked first.
HUMAN_PHRASES = (
    "take a message", "take your message", "who's calling", "who is calling", "who's this", "who is this",
    "can i help", "may i help", "how can i help", "what can i do for you", "this is he", "this is she",
    "speaking", "may i ask who", "can i ask who", "what's this about", "what is this about", "what is it about",
)
# What mailbox greetings say.
MACHINE_PHRASES = (
    "leave a message", "leave your message", "leave me a message", "leave a brief message",
    "leave your name", "after the tone", "after the beep", "at the tone", "at the beep", "you have reached",
    "you've reached", "can't take your call", "cannot take your call", "can't come to the phone",
    "cannot come to the phone", "unable to take your call", "unable to answer", "not available to take your call",
    "voicemail", "voice mail", "mailbox", "record your message", "get back to you", "call you back as soon",
    "the person you are calling", "the number you have dialed", "the number you have dialled",
)


def _normalised(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


LLM_INSTRUCTION = (
    "You screen outbound phone calls. You are told what was heard when the callee picked up. Answer with one "
    "word: machine (a voicemail greeting, an answering machine, a mailbox), human (a person talking), or unsure."
)


async def classify_with_llm(llm, text: str, *, timeout_secs: float = 2.0) -> str | None:
    """A second opinion when the rules cannot tell: one out-of-pipeline inference on the
    call's own LLM service (built through the provider registry). None when it is unsure,
    slow or failing: the call goes on as if it had not been asked."""
    from pipecat.processors.aggregators.llm_context import LLMContext

    context = LLMContext(messages=[{"role": "user", "content": f'Heard when the callee picked up: "{text}"'}])
    try:
        answer = await asyncio.wait_for(
            llm.run_inference(context, max_tokens=3, system_instruction=LLM_INSTRUCTION), timeout_secs)
    except Exception:  # noqa: BLE001 - a second opinion, never a reason to fail the call
        logger.warning("voicemail: the LLM could not classify the greeting", exc_info=True)
        return None
    word = (answer or "").strip().lower()
    return MACHINE if word.startswith("machine") else HUMAN if word.startswith("human") else None


def classify_greeting(text: str) -> str | None:
    """HUMAN, MACHINE, or None when the words so far do not tell."""
    heard = _normalised(text)
    if not heard:
        return None
    if any(phrase in heard for phrase in HUMAN_PHRASES):
        return HUMAN
    if any(phrase in heard for phrase in MACHINE_PHRASES):
        return MACHINE
    return None


class VoicemailDetector(FrameProcessor):
    """After STT: classify the callee's first words (for `listen_secs` from the start of
    the call); on a machine, swallow its transcripts and call `on_greeting_over` once the
    callee has been quiet for `quiet_secs` (at most `max_greeting_secs` after the verdict).
    Callbacks: `on_verdict(verdict, source)` once (HUMAN / MACHINE / UNKNOWN; source
    "transcript", or "carrier" through `machine_detected`), `on_greeting_over()` once."""

    def __init__(self, *, listen_secs: float, quiet_secs: float,
                 on_verdict: Callable[[str, str], Awaitable[None]], on_greeting_over: Callable[[], Awaitable[None]],
                 max_greeting_secs: float = 30.0,
                 classify: Callable[[str], str | None] = classify_greeting,
                 second_opinion: Callable[[str], Awaitable[str | None]] | None = None):
        """`second_opinion(text)`: asked (awaited, the transcript held meanwhile) when the rules
        cannot tell, e.g. `classify_with_llm` on the call's LLM."""
        super().__init__(name="voicemail-detector", enable_direct_mode=True)
        self._listen_secs = listen_secs
        self._quiet_secs = quiet_secs
        self._max_greeting_secs = max_greeting_secs
        self._on_verdict = on_verdict
        self._on_greeting_over = on_greeting_over
        self._classify = classify
        self._second_opinion = second_opinion
        self._heard = ""
        self._started: float | None = None
        self._verdict: str | None = None
        self._speaking = False
        self._waiting: asyncio.Task | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._greeting_over = False

    @property
    def verdict(self) -> str | None:
        return self._verdict

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._started = time.monotonic()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._speaking = True
            self._cancel_wait()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._speaking = False
            if self._verdict == MACHINE:
                self._wait_for_quiet()
        elif isinstance(frame, TranscriptionFrame) and self._verdict is None:
            self._heard = f"{self._heard} {frame.text}".strip()
            verdict = self._classify(self._heard)
            if verdict is None and self._second_opinion is not None and self._within_listening():
                verdict = await self._second_opinion(self._heard)
            if verdict is None and self._started is not None and time.monotonic() - self._started > self._listen_secs:
                verdict = UNKNOWN
            if verdict is not None:
                await self._decide(verdict, "transcript")
        if self._verdict == MACHINE and isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            return  # a recording: nobody to answer
        await self.push_frame(frame, direction)

    def _within_listening(self) -> bool:
        return self._started is None or time.monotonic() - self._started <= self._listen_secs

    async def machine_detected(self, source: str = "carrier") -> None:
        """The carrier's answering-machine detection said so first."""
        if self._verdict in (None, UNKNOWN):
            await self._decide(MACHINE, source)

    async def _decide(self, verdict: str, source: str) -> None:
        self._verdict = verdict
        await self._on_verdict(verdict, source)
        if verdict == MACHINE:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(self._max_greeting_secs,
                                             lambda: loop.create_task(self._greeting_ended()))
            if not self._speaking:
                self._wait_for_quiet()

    def _wait_for_quiet(self) -> None:
        self._cancel_wait()
        self._waiting = asyncio.get_running_loop().create_task(self._quiet_then_end())

    def _cancel_wait(self) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()
        self._waiting = None

    async def _quiet_then_end(self) -> None:
        await asyncio.sleep(self._quiet_secs)
        if not self._speaking:
            await self._greeting_ended()

    async def _greeting_ended(self) -> None:
        if self._greeting_over:
            return
        self._greeting_over = True
        if self._deadline is not None:
            self._deadline.cancel()
        await self._on_greeting_over()

    async def cleanup(self):
        self._cancel_wait()
        if self._deadline is not None:
            self._deadline.cancel()
        await super().cleanup()
