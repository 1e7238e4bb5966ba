"""Turn taking: when the caller takes the turn from the agent, and when the caller's
turn is over. Pipecat's turn strategies, with two things they do not know:

- Barge-in that tells an acknowledgement from an interruption. While the agent
  speaks, `BargeInUserTurnStartStrategy` lets the caller take the turn once they
  have said `min_words` words that are not acknowledgements (default 1: the first
  word that is not one, "No", "Sorry", "Wait", stops the agent; "yeah but" at
  "but"), by an interim or final transcript. A trailing word that may begin an
  acknowledgement ("I" of "I see", "got" of "got it") waits for the next word.
  For STTs that only transcribe a finished segment, words cannot be heard while
  they are said, so speech length stands in for them: the caller takes the turn
  after max(`min_words` x SPEECH_SECS_PER_WORD, ACKNOWLEDGEMENT_SECS) of talk
  (a one-word "mm-hmm" or "okay" is over before then) or with any finished
  transcript that is not only acknowledgements ("No."). Once the STT has sent an
  interim transcript, words decide and only STREAMING_FALLBACK_SECS of talk
  without one takes the turn. Acknowledgements themselves never take the turn
  (see `apps.voice.processors.backchannels`). While the agent is silent, voice
  activity starts the turn at once, as before.
- End of turn that waits for the end of the sentence. `EndOfTurnUserTurnStopStrategy`
  is Pipecat's `TurnAnalyzerUserTurnStopStrategy` over the process-wide Smart Turn
  model (`apps.voice.smart_turn`); when the transcript of the pause plainly goes on
  ("my account number is ...", a trailing comma, "and", "the"), it holds the turn
  open however sure the model is, until the caller speaks again or has been silent
  for `max_pause_secs`. It says why each turn ended: "end_of_turn_model" or
  "silence" (the aggregator's stop timeout is "timeout"). A number read out digit by
  digit ("... four five") also waits for the next group.
"""
from __future__ import annotations

import asyncio
import re
import time

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

from apps.voice.smart_turn import END_OF_TURN_MODEL, SILENCE

TIMEOUT = "timeout"  # the aggregator's user turn stop timeout ended the turn

# How long "a word" of speech is when counting words by time (STTs without interim
# transcripts), from the VAD's first speech window. Measured on Piper's US voice at
# 8 kHz: acknowledgements ("mm-hmm", "okay", "uh-huh", "yeah", "right", "sure",
# "I see") are 0.2-0.5 s of speech.
SPEECH_SECS_PER_WORD = 0.25
# Without words, the shortest talk over the agent that takes the turn: the acknowledgements above are over by
# then (the longest in Piper's reading, "mm-hmm" and "I see", are 0.46-0.50 s), so "after 1 word" means 0.5 s of
# talk, as "after 2 words" did.
ACKNOWLEDGEMENT_SECS = 0.5
# With an STT that streams interim transcripts the words decide; talking this long over the agent without
# one word the STT could make out (noise, another language) still takes the turn.
STREAMING_FALLBACK_SECS = 1.5

# Said while the other person talks to show one is listening; never a request for the turn.
ACKNOWLEDGEMENTS: dict[str, tuple[str, ...]] = {
    "en": ("mm-hmm", "mhm", "mm", "hmm", "mm hmm", "uh-huh", "uh huh", "okay", "ok", "yeah", "yep", "yes", "right",
           "sure", "i see", "got it", "alright", "all right", "cool", "great", "exactly", "true", "oh", "ah", "uh"),
    "es": ("ajá", "aja", "mhm", "sí", "si", "vale", "claro", "ya", "bueno", "de acuerdo", "entiendo", "okay", "ok"),
    "fr": ("mhm", "oui", "ouais", "d'accord", "ok", "okay", "je vois", "ah", "bien sûr", "exactement", "voilà"),
    "de": ("mhm", "ja", "genau", "okay", "ok", "alles klar", "verstehe", "ach so", "stimmt", "klar"),
    "pt": ("aham", "mhm", "sim", "tá", "ok", "okay", "certo", "entendi", "claro", "beleza"),
    "it": ("mhm", "sì", "si", "ok", "okay", "certo", "capisco", "va bene", "esatto", "giusto"),
}

# Words a sentence hardly ever ends on: a transcript ending with one is a pause mid-sentence.
CONTINUATIONS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the my your our their his her its this these those and or but so because if than that to of for "
        "at with from by about into onto is are was were am be been will would can could should have has had "
        "do does did um uh er erm like".split()
    ),
    "es": frozenset("el la los las un una mi mis tu su sus y o pero porque que de del a al en con por para es son "
                    "está era eh este".split()),
    "fr": frozenset("le la les un une mon ma mes ton ta son sa ses et ou mais parce que de du des à au en avec pour "
                    "par est sont euh".split()),
    "de": frozenset("der die das ein eine mein meine dein sein ihr und oder aber weil dass von zu mit für auf ist "
                    "sind war äh ähm".split()),
    "pt": frozenset("o a os as um uma meu minha seu sua e ou mas porque que de do da em com por para é são "
                    "está era né".split()),
    "it": frozenset("il lo la i gli le un una mio mia tuo suo e o ma perché che di del della a al in con per è "
                    "sono era ehm".split()),
}

_WORD = re.compile(r"[\w'’-]+")
# Digits said one by one: a caller reading out a number pauses between groups ("four five ... seven two").
_DIGITS = frozenset("zero oh one two three four five six seven eight nine".split())


def _base_language(language: str) -> str:
    return (language or "en").split("-")[0].split("_")[0].lower()


def acknowledgements_for(language: str, custom: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The agent's own list when it has one, else the language's (English for an unknown language)."""
    words = tuple(word.strip().lower() for word in custom if word.strip())
    return words or ACKNOWLEDGEMENTS.get(_base_language(language), ACKNOWLEDGEMENTS["en"])


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str, acknowledgements: tuple[str, ...], *, partial: bool = False) -> list[str]:
    """The words of `text` left once every acknowledgement ("mm-hmm", "i see") is taken out.
    `partial`: `text` is an interim transcript that may stop mid-phrase, so trailing words that
    begin an acknowledgement ("i" of "i see", "got" of "got it") are not counted yet."""
    words = _words(text)
    phrases = sorted((_words(phrase) for phrase in acknowledgements), key=len, reverse=True)
    left, position = [], 0
    while position < len(words):
        rest = words[position:]
        if partial and any(len(phrase) > len(rest) and phrase[: len(rest)] == rest for phrase in phrases):
            break  # the interim ends where an acknowledgement may be going on
        for phrase in phrases:
            if phrase and words[position : position + len(phrase)] == phrase:
                position += len(phrase)
                break
        else:
            left.append(words[position])
            position += 1
    return left


def is_acknowledgement(text: str, acknowledgements: tuple[str, ...]) -> bool:
    """True for "Mm-hmm.", "Okay, yeah." - text that is nothing but acknowledgements."""
    return bool(_words(text)) and not content_words(text, acknowledgements)


def sounds_unfinished(text: str, language: str = "en") -> bool:
    """The caller paused mid-sentence: a trailing comma, dash or ellipsis, a last word
    a sentence hardly ends on ("is", "the", "and"), or digits read out one by one."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith((",", "-", "—", "...", "…")):
        return True
    # STTs often end a pause with a full stop all the same: the last word decides.
    words = _words(stripped)
    if len(words) >= 2 and all(word in _DIGITS or word.isdigit() for word in words[-2:]):
        return True  # reading out digits: the next group may follow
    continuations = CONTINUATIONS.get(_base_language(language), CONTINUATIONS["en"])
    return bool(words) and words[-1] in continuations


class BargeInUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """While the agent speaks, the caller takes the turn (interrupting) after
    `min_words` words that are not acknowledgements (1: at the first such word). While the agent is silent,
    voice activity starts the turn at once (Pipecat's VAD start strategy)."""

    def __init__(self, *, min_words: int, acknowledgements: tuple[str, ...], vad_analyzer=None, **kwargs):
        """`vad_analyzer`: the call's `SharedSileroVADAnalyzer`, asked whether the caller
        is voicing right now (for counting words by time); without it only transcripts count."""
        super().__init__(**kwargs)
        self._min_words = max(1, min_words)
        self._speech_secs = max(self._min_words * SPEECH_SECS_PER_WORD, ACKNOWLEDGEMENT_SECS)
        self._acknowledgements = acknowledgements
        self._vad = vad_analyzer
        self._bot_speaking = False
        self._speech_onset: float | None = None  # monotonic; caller speech that began over the agent
        self._stt_streams = False  # an interim transcript came: count words, not seconds

    async def handle_user_turn_started(self):
        self._speech_onset = None

    async def _take_turn(self) -> ProcessFrameResult:
        self._speech_onset = None
        await self.trigger_user_turn_started()
        return ProcessFrameResult.STOP

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, InputAudioRawFrame):
            speech_secs = max(self._speech_secs, STREAMING_FALLBACK_SECS) if self._stt_streams else self._speech_secs
            if (self._speech_onset is not None and self._bot_speaking and self._vad is not None
                    and time.monotonic() - self._speech_onset >= speech_secs and self._vad.hears_speech):
                return await self._take_turn()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            if self._speech_onset is not None:  # the agent finished while the caller was talking
                return await self._take_turn()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            if not self._bot_speaking:
                return await self._take_turn()
            onset = getattr(self._vad, "speech_onset", None)
            self._speech_onset = onset if onset is not None else time.monotonic() - (frame.start_secs or 0.0)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._speech_onset = None
        elif isinstance(frame, InterimTranscriptionFrame):
            self._stt_streams = True
            if (not self._bot_speaking
                    or len(content_words(frame.text, self._acknowledgements, partial=True)) >= self._min_words):
                return await self._take_turn()
        elif isinstance(frame, TranscriptionFrame):
            if not self._bot_speaking or not is_acknowledgement(frame.text, self._acknowledgements):
                return await self._take_turn()
        return ProcessFrameResult.CONTINUE


class EndOfTurnUserTurnStopStrategy(TurnAnalyzerUserTurnStopStrategy):
    """Pipecat's turn-analyzer stop strategy (Smart Turn), held open while the
    transcript so far plainly goes on, for at most `max_pause_secs` of silence."""

    def __init__(self, *, turn_analyzer, language: str = "en", max_pause_secs: float = 2.0, **kwargs):
        super().__init__(turn_analyzer=turn_analyzer, **kwargs)
        self._language = language
        self._max_pause_secs = max_pause_secs
        self._turn_text = ""
        self._pause_started: float | None = None
        self._hold_task: asyncio.Task | None = None
        self._held_past_pause = False
        self.last_reason = ""

    async def _reset(self):
        self._turn_text = ""
        await super()._reset()

    async def _discard_pending_end_of_turn(self):
        self._held_past_pause = False
        if self._hold_task:
            await self.task_manager.cancel_task(self._hold_task)
            self._hold_task = None
        await super()._discard_pending_end_of_turn()

    async def cleanup(self):
        if self._hold_task:
            await self.task_manager.cancel_task(self._hold_task)
            self._hold_task = None
        await super().cleanup()

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame):
        self._pause_started = time.monotonic() - (frame.stop_secs or 0.0)
        await super()._handle_vad_user_stopped_speaking(frame)

    async def _handle_transcription(self, frame: TranscriptionFrame):
        self._turn_text = f"{self._turn_text} {frame.text}".strip()
        await super()._handle_transcription(frame)

    async def _maybe_trigger_user_turn_stopped(self):
        silence_ended_it = getattr(self._turn_analyzer, "end_reason", "") == SILENCE
        if (self._turn_complete and not self._held_past_pause and not silence_ended_it
                and sounds_unfinished(self._turn_text, self._language)):
            if self._hold_task is None:
                waited = time.monotonic() - (self._pause_started or time.monotonic())
                self._hold_task = self.task_manager.create_task(
                    self._hold(max(0.0, self._max_pause_secs - waited)), f"{self}::hold")
            return
        await super()._maybe_trigger_user_turn_stopped()

    async def _hold(self, secs: float):
        try:
            await asyncio.sleep(secs)
        except asyncio.CancelledError:
            return
        self._hold_task = None
        self._held_past_pause = True
        await self._maybe_trigger_user_turn_stopped()

    async def trigger_user_turn_stopped(self, **kwargs):
        analyzer_reason = getattr(self._turn_analyzer, "end_reason", "")
        self.last_reason = SILENCE if self._held_past_pause or analyzer_reason != END_OF_TURN_MODEL else END_OF_TURN_MODEL
        await super().trigger_user_turn_stopped(**kwargs)
