"""Helpers for running the voice runtime against the doubles without Django:
used by the runtime tests and the benchmark's bare-pipeline baseline."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import websockets
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService

from apps.voice.bridge import StreamBridge
from apps.voice.config import VoiceConfig
from apps.voice.media_protocol import StreamStart
from apps.voice.session import CallSession
from apps.voice.transport import MediaStreamTransport


def deepgram_stt(base_url: str, *, api_key: str = "dg-test", sample_rate: int = 8000,
                 endpointing_ms: int | None = None):
    """Streaming STT with interim results the way the Deepgram provider module builds it, talking to
    the double's `/v1/listen` on the same server as `base_url` (the OpenAI-compatible double).
    `endpointing_ms`: the provider's "endpointing" setting (None: Deepgram's default)."""
    from pipecat.services.deepgram.stt import DeepgramSTTService

    host = base_url.split("://", 1)[1].split("/", 1)[0]
    settings = DeepgramSTTService.Settings(endpointing=endpointing_ms) if endpointing_ms is not None else None
    return DeepgramSTTService(api_key=api_key, base_url=f"ws://{host}", sample_rate=sample_rate, settings=settings)


def openai_services(base_url: str, *, api_key: str = "sk-test", stt: str = "openai"):
    """STT, LLM and TTS the way the OpenAI provider module builds them (`stt="deepgram"`: Deepgram's
    streaming STT in place of OpenAI's, which only transcribes a finished segment)."""
    if stt == "deepgram":
        stt = deepgram_stt(base_url)
    else:
        stt = OpenAISTTService(
            api_key=api_key, base_url=base_url, settings=OpenAISTTService.Settings(model="whisper-1")
        )
    llm = OpenAILLMService(
        api_key=api_key, base_url=base_url, settings=OpenAILLMService.Settings(model="gpt-4o-mini")
    )
    # OpenAI speech is always 24 kHz PCM; the output transport brings it to 8 kHz.
    tts = OpenAITTSService(
        api_key=api_key,
        base_url=base_url,
        sample_rate=24000,
        settings=OpenAITTSService.Settings(model="gpt-4o-mini-tts", voice="alloy"),
    )
    return stt, llm, tts


@dataclass
class RecordingHooks:
    """CallHooks that keep everything in memory."""

    events: list[tuple] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)
    recording: bytes = b""
    transcript: str = ""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end: dict = field(default_factory=dict)

    async def on_answered(self):
        self.events.append(("answered",))

    async def on_turn(self, turn: dict):
        self.turns.append(turn)

    async def hang_up(self):
        self.events.append(("hang_up",))

    async def transfer(self, to_number: str):
        self.events.append(("transfer", to_number))

    async def on_vendor_error(self, *, key_id, error):
        self.events.append(("vendor_error", key_id))

    async def on_answered_by(self, answered_by: str):
        self.events.append(("answered_by", answered_by))

    async def on_recording(self, wav: bytes, transcript: str):
        self.recording, self.transcript = wav, transcript

    async def on_end(self, *, end_reason: str, error: str, usage: dict):
        self.end = {"end_reason": end_reason, "error": error, "usage": usage}
        self.events.append(("end", end_reason))
        self.ended.set()


class PlainMediaServer:
    """A websockets server doing what the Channels consumer does, minus Django:
    every connection is one call with `config`, services from `base_url`."""

    def __init__(self, *, base_url: str, config: VoiceConfig, carrier="twilio", stt: str = "openai",
                 stt_factory=None, s2s_provider: str = "", s2s_settings: dict | None = None, hooks_factory=None,
                 trace=None):
        """`carrier`: a media-stream protocol object, or a registered carrier's name; `stt`: "openai"
        (segment transcription) or "deepgram" (streaming, interim results); `stt_factory()`: the STT
        service to use instead of either (e.g. one built by the provider registry). `s2s_provider`
        (with `config.speech_to_speech`): the speech-to-speech vendor at `base_url`, built by its
        vendor module with `s2s_settings` (default {"model": "gpt-realtime"}), the fixed lines in Piper's voice.
        `hooks_factory`: makes each call's hooks (default RecordingHooks). `trace`: a function of the call's
        number (0, 1...) giving its CallTraceSettings (None: untraced)."""
        self.hooks_factory = hooks_factory or RecordingHooks
        self.base_url = base_url
        self.stt = stt
        self.stt_factory = stt_factory
        self.s2s_provider = s2s_provider
        self.s2s_settings = dict(s2s_settings or {"model": "gpt-realtime"})
        self.config = config
        self.trace = trace
        if isinstance(carrier, str):
            from apps.telephony.carriers.registry import CARRIERS  # the registry needs Django settings

            carrier = CARRIERS[carrier]
        self.carrier = carrier
        self.hooks: list[RecordingHooks] = []
        self.bridges: list[StreamBridge] = []
        self._server = None
        self.port = 0

    async def start(self) -> PlainMediaServer:
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws):
        hooks = self.hooks_factory()
        self.hooks.append(hooks)

        async def start_session(start: StreamStart, transport: MediaStreamTransport) -> CallSession:
            if self.s2s_provider:
                from apps.agents.selectors import ProviderSpec
                from apps.providers.registry import build_s2s, build_tts

                def build():  # off the event loop, as apps.voice.launch does (Piper loads its model)
                    spec = ProviderSpec(kind="speech_to_speech", provider=self.s2s_provider, api_key="sk-test",
                                        base_url=self.base_url, settings=self.s2s_settings)
                    return (build_s2s(spec, silence_secs=self.config.vad_stop_secs,
                                      language_code=self.config.language),
                            build_tts(ProviderSpec(kind="tts", provider="piper")))

                s2s, lines = await asyncio.to_thread(build)
                return CallSession(config=self.config, transport=transport, s2s=s2s, lines_tts=lines, hooks=hooks,
                                   key_ids={"speech_to_speech": "1"})
            stt, llm, tts = openai_services(self.base_url, stt=self.stt)
            if self.stt_factory is not None:
                stt = self.stt_factory()
            trace = self.trace(len(self.hooks) - 1) if self.trace is not None else None
            return CallSession(config=self.config, transport=transport, stt=stt, llm=llm, tts=tts, hooks=hooks,
                               trace=trace)

        async def close(code: int):
            await ws.close(code)

        bridge = StreamBridge(carrier=self.carrier, send=ws.send, close=close, start_session=start_session)
        self.bridges.append(bridge)
        try:
            async for message in ws:
                await bridge.receive(message)
        except websockets.ConnectionClosed:
            pass
        await bridge.disconnected()


# -- caller lines made with Piper (offline), for the turn-taking tests and benchmark ----------

_SPOKEN: dict[str, bytes] = {}


def spoken(text: str) -> bytes:
    """`text` in Piper's US voice, 16-bit 8 kHz PCM, cut to its audible part (cached)."""
    if text not in _SPOKEN:
        from devtools.doubles.audio import speech_bounds
        from devtools.simulate import line_from_text

        pcm = line_from_text(text).pcm_8k
        start, end = speech_bounds(pcm, 8000)
        _SPOKEN[text] = pcm[int(start * 8000) * 2 : int(end * 8000) * 2]
    return _SPOKEN[text]


def silence(secs: float) -> bytes:
    return b"\x00\x00" * int(secs * 8000)


def caller_line(*parts: str, pause_secs: float = 0.8) -> bytes:
    """The parts said one after another with `pause_secs` of silence between them
    (a caller pausing mid-sentence), with a little silence before and after."""
    pieces = [silence(0.2)]
    for index, part in enumerate(parts):
        if index:
            pieces.append(silence(pause_secs))
        pieces.append(spoken(part))
    pieces.append(silence(0.3))
    return b"".join(pieces)


def teach_transcripts(book, *texts: str) -> None:
    """Let the STT double's TranscriptBook recognise each text as Piper says it, and tell it when each of
    the first words ends (the streaming double sends no word before its audio has come)."""
    for text in texts:
        book.register(spoken(text), 8000, text, word_ends=word_ends(text))


def word_ends(text: str, first: int = 3) -> tuple[float, ...]:
    """When each of the first `first` words of `text` ends in Piper's reading, in seconds from the first
    audible frame: the length of the words up to it said on their own (an estimate: said alone, a phrase
    ends with a sentence's final lengthening and without the next word's coarticulation)."""
    words = text.split()
    ends = []
    for count in range(1, min(first, len(words)) + 1):
        phrase = text if count == len(words) else " ".join(words[:count]).rstrip(",.?!;:")
        ends.append(len(spoken(phrase)) / 2 / 8000)
    return tuple(ends)


async def call_saying(*, base_url: str, config: VoiceConfig, lines: tuple[str, ...]) -> RecordingHooks:
    """One call over Twilio Media Streams: wait out the greeting, say each fixture line (a file of the shared
    caller audio) and wait for the agent's whole answer, hang up; the call's hooks once it has ended."""
    from devtools.doubles.audio import FIXTURES_DIR, read_wav
    from devtools.doubles.twilio_caller import TwilioCaller

    server = await PlainMediaServer(base_url=base_url, config=config).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    for name in lines:
        utterance = await caller.say(read_wav(FIXTURES_DIR / name)[0], name)
        await utterance.done.wait()
        await caller.wait_for_agent_audio(after=utterance.speech_end_at)
        await caller.wait_for_agent_quiet()
    await caller.hang_up()
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()
    return hooks
