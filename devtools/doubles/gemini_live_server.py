"""A Gemini Live (BidiGenerateContent) websocket server for tests and simulations.

Speaks the Live API's JSON protocol over a real TLS websocket, so the production path
(Pipecat's `GeminiLiveLLMService` through google-genai, pointed here by the provider
account's base URL) is what runs. google-genai always connects with wss://, so the double
serves TLS with a certificate made at runtime (devtools.doubles.tls); the client trusts it
through the `PROVIDER_EXTRA_CA_CERTS` setting (`double.ca_file`).

- the client connects to `/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent`
  with `x-goog-api-key`, sends `setup` (model, generationConfig, systemInstruction, tools,
  realtimeInputConfig.automaticActivityDetection); the double answers `setupComplete`;
- `realtimeInput.audio` (16-bit PCM, `audio/pcm;rate=N`, base64) feeds a server VAD (10 ms
  energy, `silenceDurationMs` from the setup). When speech stops, the segment is looked up in a
  TranscriptBook (the shared caller-audio fixtures) and sent as `serverContent.inputTranscription`,
  then the model answers on its own;
- speech starting while the model is generating cancels the generation: `serverContent.interrupted`;
- an answer is scripted by `Rule`s (devtools.doubles.openai_server): `serverContent.outputTranscription`
  (the whole reply), then `serverContent.modelTurn` parts of `inlineData` audio (24 kHz tone whose
  length follows the text, 100 ms a message, streamed no faster than real time after a lead of
  `lead_secs`: a caller talking over a long answer finds it still being generated), then
  `serverContent.generationComplete` and `serverContent.turnComplete` with `usageMetadata`;
  or a `toolCall` (`functionCalls` with id, name, args): the turn goes on when the
  `toolResponse` comes back (`after_tool_reply`, "" to stay silent, as for a SILENT result);
- `clientContent` turns are taken in; `turnComplete: true` asks for an answer (the greeting: the
  `saying exactly: "..."` of the seeded turn or of the system instruction);
- a rule with `status` closes the websocket as the API does on an error (1011 with
  `RESOURCE_EXHAUSTED: ...` for 429, `INTERNAL: ...` for 5xx), and every connection after it at its
  setup (a spent quota, a service down): `double.refused` counts those.

Usage, deterministic so tests can assert exact figures (one `usageMetadata` per turn, a cut
turn included): prompt audio tokens = 32 per second of the caller's segment, prompt text tokens
= words of the text the turn answers (the system instruction for the first turn, a tool's
response after a tool call), response audio tokens = 32 per second of audio sent, response
text tokens = words of a tool call's arguments. Every turn is kept in `double.turns` with its usage.

    with GeminiLiveDouble(rules=[Rule(when="that is all", tool="end_call")]) as double:
        ... ProviderAccount(provider="gemini_live", base_url=double.base_url) ...
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from devtools.doubles.audio import tone
from devtools.doubles.background import BackgroundLoopDouble
from devtools.doubles.openai_server import Rule
from devtools.doubles.tls import LocalCertificate
from devtools.doubles.transcripts import TranscriptBook

OUTPUT_SAMPLE_RATE = 24000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_SAMPLE_RATE}"
SPEECH_DB = -45.0  # a 10 ms frame louder than this is speech
SPEECH_START_FRAMES = 3  # 30 ms of speech starts a segment
PREFIX_PADDING_FRAMES = 30  # the 300 ms before the start belong to the segment
AUDIO_TOKENS_PER_SEC = 32
PATH = re.compile(r"^/ws/google\.ai\.generativelanguage\.(?P<version>v1\w*)\.GenerativeService\.BidiGenerateContent$")
GREETING = re.compile(r'saying exactly:\s*"(?P<line>[^"]*)"', re.IGNORECASE)


def _words(text: str) -> int:
    return len(text.split())


def _get(message: dict, camel: str):
    """google-genai sends some keys in snake case (`realtime_input`, `mime_type`), the API
    documents camel case: take either."""
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
    return message.get(camel, message.get(snake))


def _texts(content: dict) -> list[str]:
    return [part.get("text") or "" for part in content.get("parts") or [] if (part.get("text") or "").strip()]


@dataclass
class LiveSession:
    """What one connection asked and was told (for assertions)."""

    api_key: str = ""
    version: str = ""
    setup: dict = field(default_factory=dict)
    received: list[str] = field(default_factory=list)  # message kinds, in order (no audio chunks)
    audio_in_secs: float = 0.0
    audio_in_rates: set[int] = field(default_factory=set)
    transcripts: list[str] = field(default_factory=list)
    client_turns: list[dict] = field(default_factory=list)  # clientContent turns, as sent
    function_responses: list[dict] = field(default_factory=list)
    speech_started: int = 0
    interrupted_turns: int = 0

    @property
    def system_instruction(self) -> str:
        return " ".join(_texts(_get(self.setup, "systemInstruction") or {}))

    @property
    def tools(self) -> dict[str, str]:
        """{declared function: its behavior ("" when not given: BLOCKING)}."""
        return {declaration.get("name"): declaration.get("behavior") or "" for tool in self.setup.get("tools") or []
                for declaration in _get(tool, "functionDeclarations") or []}


class _Connection:
    def __init__(self, double: GeminiLiveDouble, ws, log: LiveSession):
        self.double = double
        self.ws = ws
        self.log = log
        self.pending_text: list[str] = []  # what the next answer answers
        self.pending_audio_secs = 0.0
        self.generation: asyncio.Task | None = None
        self.turn: dict | None = None  # the model turn in progress (in double.turns), until turnComplete
        # Server VAD state.
        self.rate = 16000
        self.buffer = bytearray()
        self.frames: list[bytes] = []
        self.speaking = False
        self.voiced_run = 0
        self.silent_run = 0

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    # -- client messages ------------------------------------------------------------------------

    async def handle(self, message: dict) -> None:
        if (realtime := _get(message, "realtimeInput")) is not None:
            audio = realtime.get("audio")
            if audio:
                await self._audio(audio)
            else:
                self.log.received.append("realtimeInput")
            if (realtime.get("text") or "").strip():
                self.pending_text.append(realtime["text"].strip())
                await self._answer()
        elif (content := _get(message, "clientContent")) is not None:
            self.log.received.append("clientContent")
            for turn in content.get("turns") or []:
                self.log.client_turns.append(turn)
                if turn.get("role") == "user":
                    self.pending_text.extend(_texts(turn))
            if _get(content, "turnComplete"):
                await self._answer()
        elif (response := _get(message, "toolResponse")) is not None:
            self.log.received.append("toolResponse")
            await self._tool_response(_get(response, "functionResponses") or [])

    # -- server VAD -----------------------------------------------------------------------------

    def _silence_frames(self) -> int:
        config = _get(self.log.setup, "realtimeInputConfig") or {}
        detection = _get(config, "automaticActivityDetection") or {}
        return max(1, int((_get(detection, "silenceDurationMs") or 500) / 10))

    async def _audio(self, blob: dict) -> None:
        mime = _get(blob, "mimeType") or ""
        rate = int(mime.partition("rate=")[2] or 16000)
        if rate != self.rate:
            self.rate, self.buffer = rate, bytearray()
        self.log.audio_in_rates.add(rate)
        data = blob.get("data") or ""
        pcm = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))  # google-genai: url-safe, unpadded
        self.log.audio_in_secs += len(pcm) / (rate * 2)
        self.buffer += pcm
        frame_bytes = rate * 2 // 100
        while len(self.buffer) >= frame_bytes:
            frame, self.buffer = bytes(self.buffer[:frame_bytes]), self.buffer[frame_bytes:]
            await self._frame(frame)

    async def _frame(self, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        voiced = 10 * np.log10(float(np.mean(samples**2)) + 1e-10) > SPEECH_DB
        self.frames.append(frame)
        if not self.speaking:
            self.frames = self.frames[-(PREFIX_PADDING_FRAMES + SPEECH_START_FRAMES):]
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            if self.voiced_run >= SPEECH_START_FRAMES:
                self.speaking, self.silent_run = True, 0
                self.log.speech_started += 1
                await self._interrupt()
            return
        self.silent_run = 0 if voiced else self.silent_run + 1
        if self.silent_run >= self._silence_frames():
            self.speaking, self.voiced_run = False, 0
            segment, self.frames = b"".join(self.frames), []
            transcript = await asyncio.to_thread(self.double.book.transcribe, segment, self.rate)
            self.log.transcripts.append(transcript)
            await self.send({"serverContent": {"inputTranscription": {"text": transcript}}})
            self.pending_text.append(transcript)
            self.pending_audio_secs += len(segment) / (self.rate * 2)
            await self._answer()

    # -- the model's turns ----------------------------------------------------------------------

    async def _interrupt(self) -> None:
        """The caller talks while the model generates: the generation stops, `interrupted`."""
        task = self.generation
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.log.interrupted_turns += 1
        if self.turn is not None:
            self.turn["status"] = "interrupted"
        await self.send({"serverContent": {"interrupted": True}})
        await self._complete_turn()

    def _open_turn(self, answered: str) -> dict:
        if self.turn is None:
            self.turn = {"id": uuid.uuid4().hex[:12], "answered": answered, "reply": "", "tool": None,
                         "status": "in_progress", "started_at": time.monotonic(), "audio_out_secs": 0.0,
                         "usage": {"prompt_audio": 0, "prompt_text": 0, "response_audio": 0, "response_text": 0}}
            self.double.turns.append(self.turn)
        return self.turn

    async def _answer(self) -> None:
        text = " ".join(self.pending_text).strip()
        audio_secs = self.pending_audio_secs
        self.pending_text, self.pending_audio_secs = [], 0.0
        await self._interrupt()  # a new turn replaces one still generating
        instruction = self.log.system_instruction
        # The opening: the instructions say what to open with (the system instruction, or a seeded
        # turn: Pipecat sends a lone system message as a user turn).
        greeting = GREETING.search(text) if not audio_secs else None
        if greeting is None and not text:
            greeting = GREETING.search(instruction)
        if greeting is not None or not text:
            rule = None
            reply = greeting.group("line") if greeting is not None else self.double.default_greeting
            prompt_text = _words(instruction) + _words(text)
        else:
            rule = self.double.pick_rule(text)
            reply = rule.reply if rule is not None else self.double.default_reply.format(text=text)
            prompt_text = 0 if audio_secs else _words(text)
        turn = self._open_turn(text)
        turn["usage"]["prompt_audio"] += round(audio_secs * AUDIO_TOKENS_PER_SEC)
        turn["usage"]["prompt_text"] += prompt_text
        self.generation = asyncio.get_running_loop().create_task(self._generate(turn, reply, rule))

    async def _generate(self, turn: dict, reply: str, rule: Rule | None) -> None:
        if self.double.first_audio_delay_secs:
            await asyncio.sleep(self.double.first_audio_delay_secs)
        if rule is not None and rule.status:
            turn["status"] = "failed"
            # The key's quota is spent (or the service is down): this session closes, and so do
            # the ones the client opens again, at their setup.
            code, reason = (1011, "RESOURCE_EXHAUSTED: You exceeded your current quota.") if rule.status == 429 else (
                1011, "INTERNAL: Internal error encountered.")
            self.double.refusing = (code, reason)
            await self.ws.close(code, reason)
            return
        if rule is not None and rule.tool:
            arguments = dict(rule.arguments)
            call = {"id": "function-call-" + uuid.uuid4().hex[:12], "name": rule.tool, "args": arguments}
            turn["tool"] = call
            turn["usage"]["response_text"] += _words(json.dumps(arguments))
            await self.send({"toolCall": {"functionCalls": [call]}})
            return  # the turn goes on with the tool's response
        await self._speak(turn, reply)
        await self._complete_turn()

    async def _speak(self, turn: dict, reply: str) -> None:
        if not reply:
            return
        turn["reply"] = f"{turn['reply']} {reply}".strip()
        await self.send({"serverContent": {"outputTranscription": {"text": reply}}})
        audio = tone(len(reply) * self.double.secs_per_char, OUTPUT_SAMPLE_RATE, frequency=440.0)
        chunk = OUTPUT_SAMPLE_RATE * 2 // 10  # 100 ms a message
        started, sent_secs = time.monotonic(), 0.0
        for start in range(0, len(audio), chunk):
            piece = audio[start:start + chunk]
            ahead = sent_secs - (time.monotonic() - started)
            if ahead > self.double.lead_secs:
                await asyncio.sleep(ahead - self.double.lead_secs)
            await self.send({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": OUTPUT_MIME, "data": base64.b64encode(piece).decode()}}]}}})
            sent_secs += len(piece) / (OUTPUT_SAMPLE_RATE * 2)
            turn["audio_out_secs"] += len(piece) / (OUTPUT_SAMPLE_RATE * 2)  # as sent: a cut answer bills what went out
        await self.send({"serverContent": {"generationComplete": True}})

    async def _tool_response(self, responses: list[dict]) -> None:
        self.log.function_responses.extend(responses)
        turn = self.turn
        if turn is None:
            return
        outputs = [json.dumps(response.get("response") or {}) for response in responses]
        turn["usage"]["prompt_text"] += sum(_words(output) for output in outputs)
        silent = any((response.get("scheduling") or (response.get("response") or {}).get("scheduling")) == "SILENT"
                     for response in responses)
        reply = "" if silent else self.double.after_tool_reply.format(output=" ".join(outputs))

        async def go_on() -> None:
            await self._speak(turn, reply)
            await self._complete_turn()

        self.generation = asyncio.get_running_loop().create_task(go_on())

    async def _complete_turn(self) -> None:
        turn, self.turn = self.turn, None
        if turn is None:
            return
        if turn["status"] == "in_progress":
            turn["status"] = "completed"
        usage = turn["usage"]
        usage["response_audio"] = round(turn["audio_out_secs"] * AUDIO_TOKENS_PER_SEC)
        prompt = usage["prompt_audio"] + usage["prompt_text"]
        response = usage["response_audio"] + usage["response_text"]

        def details(audio: int, text: int) -> list[dict]:
            return [{"modality": modality, "tokenCount": count}
                    for modality, count in (("TEXT", text), ("AUDIO", audio)) if count]

        metadata = {"promptTokenCount": prompt, "responseTokenCount": response, "totalTokenCount": prompt + response,
                    "promptTokensDetails": details(usage["prompt_audio"], usage["prompt_text"]),
                    "responseTokensDetails": details(usage["response_audio"], usage["response_text"])}
        turn["usage_metadata"] = metadata
        try:
            await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": metadata})
        except ConnectionClosed:
            pass


class GeminiLiveDouble(BackgroundLoopDouble):
    thread_name = "gemini-live-double"

    def __init__(
        self,
        *,
        rules: list[Rule] | None = None,
        book: TranscriptBook | None = None,
        certificate: LocalCertificate | None = None,
        default_reply: str = "You said: {text}",
        after_tool_reply: str = "Done.",
        default_greeting: str = "Hello.",
        secs_per_char: float = 0.06,
        lead_secs: float = 1.0,
        first_audio_delay_secs: float = 0.3,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.rules = list(rules or [])
        self.book = book or TranscriptBook.from_fixtures()
        self.certificate = certificate or LocalCertificate()
        self.default_reply = default_reply
        self.after_tool_reply = after_tool_reply
        self.default_greeting = default_greeting
        self.secs_per_char = secs_per_char
        self.lead_secs = lead_secs
        # A model's time to its first output: the caller's transcript (sent first) reaches the
        # trace before the answer or tool call, as it does over the network.
        self.first_audio_delay_secs = first_audio_delay_secs
        self.host, self.port = host, port
        self.sessions: list[LiveSession] = []
        self.turns: list[dict] = []
        self.refusing: tuple[int, str] | None = None  # (close code, reason) once a rule's error fired
        self.refused = 0
        self._server = None
        self._background_init()

    @property
    def base_url(self) -> str:
        """What a provider account stores (google-genai connects to it with wss://)."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str:
        """The certificate to trust (PROVIDER_EXTRA_CA_CERTS)."""
        return str(self.certificate.cert_path)

    def pick_rule(self, text: str) -> Rule | None:
        lowered = text.lower()
        for rule in self.rules:
            if rule.when.lower() in lowered:
                return rule
        return None

    def reset(self) -> None:
        self.sessions.clear()
        self.turns.clear()
        self.refusing, self.refused = None, 0

    async def _handle(self, ws) -> None:
        request = ws.request
        match = PATH.match(request.path.split("?")[0])
        if match is None:
            await ws.close(1008, "unknown path")
            return
        log = LiveSession(api_key=request.headers.get("x-goog-api-key", ""), version=match.group("version"))
        connection = _Connection(self, ws, log)
        try:
            first = json.loads(await ws.recv())
            log.setup = first.get("setup") or {}
            log.received.append("setup")
            self.sessions.append(log)  # (a client that hangs up before its setup is no session)
            if self.refusing is not None:
                self.refused += 1
                await ws.close(*self.refusing)
                return
            await connection.send({"setupComplete": {}})
            async for raw in ws:
                await connection.handle(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            task = connection.generation
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def start_async(self) -> None:
        self._server = await serve(self._handle, self.host, self.port, max_size=None,
                                   ssl=self.certificate.server_context())
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        self._server.close()
        await self._server.wait_closed()
