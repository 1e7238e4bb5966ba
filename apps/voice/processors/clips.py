"""Pre-recorded clips in place of text-to-speech.

Between the LLM and the TTS: a clip reference the LLM writes (`[[clip:<name>]]`, see
`clip_prompt`) becomes the clip's cached audio (8 kHz 16-bit PCM, loaded before the
call), every other word goes on to the TTS. Nothing is synthesised or fetched for a
clip, so a clip turn adds no time after the LLM's first tokens. A `ClipFrame` queued
into the pipeline (greeting) or `play()` (hold, transition) plays one outside an LLM
reply.

The TTS keeps the audio in order: it queues any non-system frame behind the speech already
queued (Pipecat's audio context manager), so a clip after a sentence plays after it.
A reference in the middle of a reply first closes the reply (so the TTS speaks the
sentence before it) and opens another after the clip. The clip's words go on as an
unspoken text frame: the trace and the conversation see what was said (the TTS passes
such frames on at once, so in a reply with text before a clip the trace lists the
clip's words first; the audio is in order).

Uninterruptible clips: their audio frames are marked so (Pipecat's output transport
keeps playing them through an interruption) and `on_play` tells the session, which
turns barge-in off while the clip plays."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipecat.frames.frames import (
    DataFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

CLIP_REFERENCE = re.compile(r"\[\[\s*clip\s*:\s*([A-Za-z0-9][A-Za-z0-9_-]{0,63})\s*\]\]")
_OPEN = "[["
# Text held while it may still become a reference; longer than this it is just text.
_LONGEST_REFERENCE = 80


@dataclass(frozen=True)
class Clip:
    name: str
    words: str
    pcm: bytes  # 16-bit mono at the call's sample rate
    interruptible: bool = True
    tags: tuple[str, ...] = ()

    def duration_secs(self, sample_rate: int) -> float:
        return len(self.pcm) / 2 / sample_rate


@dataclass
class ClipFrame(DataFrame):
    """Play the named clip here (queued into the pipeline, e.g. the greeting)."""

    clip_name: str = ""


def clips_from_config(clips) -> dict[str, Clip]:
    return {clip["name"]: Clip(name=clip["name"], words=clip["words"], pcm=clip["pcm"],
                               interruptible=bool(clip.get("interruptible", True)), tags=tuple(clip.get("tags") or ()))
            for clip in clips}


def clip_prompt(clips: dict[str, Clip]) -> str:
    """What the system prompt says about the clips (empty without clips)."""
    if not clips:
        return ""
    lines = [f'- [[clip:{clip.name}]] says "{clip.words}"' + (f" ({', '.join(clip.tags)})" if clip.tags else "")
             for clip in clips.values()]
    return ("Pre-recorded clips: when one of these says exactly what you want to say, write its reference "
            "instead of the words (alone, or before or after other sentences); it plays in a recorded voice. "
            "Say anything else in your own words.\n" + "\n".join(lines))


class ClipPlayer(FrameProcessor):
    def __init__(self, *, clips: dict[str, Clip], sample_rate: int,
                 on_play: Callable[[Clip, str], None] | None = None,
                 on_unknown: Callable[[str], None] | None = None):
        """`on_play(clip, source)`: a clip is played ("llm", "greeting", "hold", "transition").
        `on_unknown(name)`: the LLM named a clip that does not exist (its reference is dropped)."""
        # Direct mode: it only rewrites frames, no queue and task of its own.
        super().__init__(name="clips", enable_direct_mode=True)
        self.clips = clips
        self._sample_rate = sample_rate
        self._on_play = on_play
        self._on_unknown = on_unknown
        self._held = ""  # text that may be the start of a reference
        self._spoken_in_reply = False  # text went on to the TTS in this reply

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMTextFrame) and not frame.skip_tts and self.clips:
            await self._text(frame.text)
        elif isinstance(frame, LLMFullResponseStartFrame):
            self._held, self._spoken_in_reply = "", False
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._flush()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._held, self._spoken_in_reply = "", False
            await self.push_frame(frame, direction)
        elif isinstance(frame, ClipFrame):
            await self.play(frame.clip_name, source="greeting")
        else:
            await self.push_frame(frame, direction)

    # -- a reply's text --------------------------------------------------------------------------

    async def _text(self, text: str) -> None:
        text = self._held + text
        self._held = ""
        while text:
            start = text.find(_OPEN)
            if start < 0:
                # A lone "[" at the end may be the start of "[[".
                keep = 1 if text.endswith("[") else 0
                await self._speak(text[: len(text) - keep])
                self._held = text[len(text) - keep:]
                return
            await self._speak(text[:start])
            text = text[start:]
            match = CLIP_REFERENCE.match(text)
            if match is None:
                if "]]" not in text and len(text) < _LONGEST_REFERENCE:
                    self._held = text  # the reference is still arriving
                    return
                await self._speak(text[:len(_OPEN)])  # not a reference after all
                text = text[len(_OPEN):]
                continue
            await self._reference(match.group(1), match.group(0))
            text = text[match.end():]

    async def _flush(self) -> None:
        held, self._held = self._held, ""
        await self._speak(held)

    async def _speak(self, text: str) -> None:
        if not text:
            return
        if text.strip():
            self._spoken_in_reply = True
        await self.push_frame(LLMTextFrame(text=text))

    async def _reference(self, name: str, reference: str) -> None:
        clip = self.clips.get(name.lower())
        if clip is None:
            if self._on_unknown is not None:
                self._on_unknown(name)
            return
        if self._spoken_in_reply:
            # Close the reply so the TTS speaks what came before the clip, then open another.
            await self.push_frame(LLMFullResponseEndFrame())
            await self.push_frame(LLMFullResponseStartFrame())
            self._spoken_in_reply = False
        await self._push_clip(clip, source="llm", reference=reference)

    # -- a clip ----------------------------------------------------------------------------------

    async def play(self, name: str, *, source: str) -> bool:
        """Play a clip outside an LLM reply (greeting, hold, transition); False if there is none.
        Only a greeting joins the conversation as the agent's words, like a spoken greeting: a hold
        or transition clip plays while a function call is open, where an assistant message would
        come between the call and its result."""
        clip = self.clips.get(name)
        if clip is None:
            return False
        if source != "greeting":
            await self._push_clip(clip, source=source, reference="", in_context=False)
            return True
        await self.push_frame(LLMFullResponseStartFrame())
        await self._push_clip(clip, source=source, reference="")
        await self.push_frame(LLMFullResponseEndFrame())
        return True

    async def _push_clip(self, clip: Clip, *, source: str, reference: str, in_context: bool = True) -> None:
        if self._on_play is not None:
            self._on_play(clip, source)
        words = TTSTextFrame(text=clip.words, text_type="clip", raw_text=reference or None)
        words.skip_tts = True
        words.includes_inter_frame_spaces = False
        words.append_to_context = in_context
        await self.push_frame(words)
        audio = TTSAudioRawFrame(audio=clip.pcm, sample_rate=self._sample_rate, num_channels=1)
        if not clip.interruptible:
            audio.interruptible = False
        await self.push_frame(audio)
