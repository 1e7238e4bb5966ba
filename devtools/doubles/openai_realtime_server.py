"""An OpenAI Realtime (speech-to-speech) websocket server for tests and simulations.

Speaks the Realtime API's GA event protocol over a real websocket, so the production
path (Pipecat's `OpenAIRealtimeLLMService`, pointed here by the provider account's
base URL) is what runs:

- the client connects to `ws://HOST:PORT/v1/realtime?model=M` with `Authorization: Bearer KEY`;
  the double says `session.created`, answers `session.update` with `session.updated`;
- `input_audio_buffer.append` (24 kHz 16-bit PCM, base64) feeds a server VAD (10 ms energy,
  `turn_detection.silence_duration_ms` from the session): `input_audio_buffer.speech_started`,
  then `speech_stopped`, `committed`, the user item, and
  `conversation.item.input_audio_transcription.completed` (the segment looked up in a
  TranscriptBook: the shared caller-audio fixtures), then a response on its own
  (server VAD's `create_response`);
- a response is scripted by `Rule`s (devtools.doubles.openai_server): `response.created`, the
  assistant item, `response.output_audio_transcript.delta`, `response.output_audio.delta` (a 24 kHz
  tone whose length follows the text), `response.done` with usage; or a function call
  (`conversation.item.added` of a `function_call`, `response.function_call_arguments.done`);
- `conversation.item.create` (messages, `function_call_output`), `response.create`,
  `response.cancel`, `conversation.item.truncate` are answered as the API does;
- speech starting while a response is being sent cancels it (`interrupt_response`);
- a rule with `status` (429, 500) answers with the API's `error` event instead.

Usage, deterministic so tests can assert exact figures: input audio tokens = 10 per second
of the caller's segment, input text tokens = words of the text the response answers (the
instructions for the first one, a tool's output after a tool), output audio tokens = 20 per
second of reply audio, output text tokens = words of the reply (or of a call's arguments).
Every response is kept in `double.responses` with its usage.

    with OpenAIRealtimeDouble(rules=[Rule(when="that is all", tool="end_call")]) as double:
        ... ProviderAccount(provider="openai_realtime", base_url=double.base_url) ...
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from devtools.doubles.audio import tone
from devtools.doubles.background import BackgroundLoopDouble
from devtools.doubles.openai_server import Rule
from devtools.doubles.transcripts import TranscriptBook

SAMPLE_RATE = 24000  # the session's audio/pcm format
FRAME_BYTES = SAMPLE_RATE * 2 // 100  # 10 ms
SPEECH_DB = -45.0  # a 10 ms frame louder than this is speech
SPEECH_START_FRAMES = 3  # 30 ms of speech starts a segment
PREFIX_PADDING_FRAMES = 30  # the 300 ms before the start belong to the segment
INPUT_AUDIO_TOKENS_PER_SEC = 10
OUTPUT_AUDIO_TOKENS_PER_SEC = 20
GREETING = re.compile(r'saying exactly:\s*"(?P<line>[^"]*)"', re.IGNORECASE)


def _event_id() -> str:
    return "event_" + uuid.uuid4().hex[:16]


def _item_id() -> str:
    return "item_" + uuid.uuid4().hex[:16]


def _words(text: str) -> int:
    return len(text.split())


@dataclass
class RealtimeSession:
    """What one connection asked and was told (for assertions)."""

    api_key: str = ""
    model: str = ""
    session: dict = field(default_factory=dict)  # the last session.update's `session`
    received: list[str] = field(default_factory=list)  # event types, in order (no audio appends)
    audio_in_secs: float = 0.0
    transcripts: list[str] = field(default_factory=list)
    function_outputs: list[dict] = field(default_factory=list)  # {"call_id", "output"}
    truncations: list[dict] = field(default_factory=list)
    speech_started: int = 0
    cancelled_responses: int = 0


class _Connection:
    def __init__(self, double: OpenAIRealtimeDouble, ws, log: RealtimeSession):
        self.double = double
        self.ws = ws
        self.log = log
        self.items: list[dict] = []
        self.pending_text: list[str] = []  # what the next response answers
        self.pending_audio_secs = 0.0
        self.pending_tool_output: dict | None = None
        self.response_task: asyncio.Task | None = None
        self.answered_first = False
        # Server VAD state.
        self.buffer = bytearray()
        self.frames: list[bytes] = []  # 10 ms frames since the last commit (with prefix padding)
        self.speaking = False
        self.voiced_run = 0
        self.silent_run = 0
        self.audio_ms = 0
        self.speech_item = ""

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps({"event_id": _event_id(), **event}))

    # -- client events --------------------------------------------------------------------------

    async def handle(self, message: dict) -> None:
        kind = message.get("type", "")
        if kind != "input_audio_buffer.append":
            self.log.received.append(kind)
        if kind == "session.update":
            self.log.session = message.get("session") or {}
            await self.send({"type": "session.updated", "session": self._session_echo()})
        elif kind == "input_audio_buffer.append":
            await self._audio(base64.b64decode(message.get("audio") or ""))
        elif kind == "input_audio_buffer.clear":
            self.frames.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.create":
            await self._item_create(message.get("item") or {}, message.get("previous_item_id"))
        elif kind == "conversation.item.truncate":
            self.log.truncations.append({key: message.get(key) for key in ("item_id", "content_index", "audio_end_ms")})
            await self.send({"type": "conversation.item.truncated", "item_id": message.get("item_id"),
                             "content_index": message.get("content_index", 0),
                             "audio_end_ms": message.get("audio_end_ms", 0)})
        elif kind == "response.create":
            await self._respond()
        elif kind == "response.cancel":
            await self._cancel_response()

    def _session_echo(self) -> dict:
        session = {key: value for key, value in self.log.session.items() if key != "tools"}
        session.update({"type": "realtime", "object": "realtime.session", "id": "sess_double",
                        "model": self.log.model})
        return session

    async def _item_create(self, item: dict, previous_item_id) -> None:
        item = {**item, "id": item.get("id") or _item_id(), "object": "realtime.item", "status": "completed"}
        self.items.append(item)
        if item.get("type") == "function_call_output":
            output = {"call_id": item.get("call_id"), "output": item.get("output")}
            self.log.function_outputs.append(output)
            self.pending_tool_output = output
        elif item.get("type") == "message":
            texts = [part.get("text") or "" for part in item.get("content") or [] if part.get("type") == "input_text"]
            if item.get("role") in ("user", "system"):  # (Pipecat sends appended messages, keypad digits, as system)
                self.pending_text.extend(text for text in texts if text)
        await self.send({"type": "conversation.item.added", "previous_item_id": previous_item_id, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": item})

    # -- server VAD -----------------------------------------------------------------------------

    def _silence_frames(self) -> int:
        detection = ((self.log.session.get("audio") or {}).get("input") or {}).get("turn_detection") or {}
        silence_ms = detection.get("silence_duration_ms") if isinstance(detection, dict) else None
        return max(1, int((silence_ms or 500) / 10))

    async def _audio(self, pcm: bytes) -> None:
        self.log.audio_in_secs += len(pcm) / (SAMPLE_RATE * 2)
        self.buffer += pcm
        while len(self.buffer) >= FRAME_BYTES:
            frame, self.buffer = bytes(self.buffer[:FRAME_BYTES]), self.buffer[FRAME_BYTES:]
            await self._frame(frame)

    async def _frame(self, frame: bytes) -> None:
        self.audio_ms += 10
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        voiced = 10 * np.log10(float(np.mean(samples**2)) + 1e-10) > SPEECH_DB
        self.frames.append(frame)
        if not self.speaking:
            self.frames = self.frames[-(PREFIX_PADDING_FRAMES + SPEECH_START_FRAMES):]
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            if self.voiced_run >= SPEECH_START_FRAMES:
                self.speaking, self.silent_run = True, 0
                self.speech_item = _item_id()
                self.log.speech_started += 1
                await self.send({"type": "input_audio_buffer.speech_started", "item_id": self.speech_item,
                                 "audio_start_ms": self.audio_ms - SPEECH_START_FRAMES * 10})
                await self._cancel_response()  # interrupt_response: the caller talks over the reply
            return
        self.silent_run = 0 if voiced else self.silent_run + 1
        if self.silent_run >= self._silence_frames():
            self.speaking = False
            self.voiced_run = 0
            segment, self.frames = b"".join(self.frames), []
            await self._speech_stopped(segment)

    async def _speech_stopped(self, segment: bytes) -> None:
        item_id = self.speech_item
        await self.send({"type": "input_audio_buffer.speech_stopped", "item_id": item_id,
                         "audio_end_ms": self.audio_ms - self.silent_run * 10})
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None})
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.items.append(item)
        await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": item})
        transcript = await asyncio.to_thread(self.double.book.transcribe, segment, SAMPLE_RATE)
        self.log.transcripts.append(transcript)
        await self.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                         "content_index": 0, "transcript": transcript})
        self.pending_text.append(transcript)
        self.pending_audio_secs += len(segment) / (SAMPLE_RATE * 2)
        await self._respond()  # server VAD's create_response

    # -- responses ------------------------------------------------------------------------------

    async def _cancel_response(self) -> None:
        task = self.response_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.log.cancelled_responses += 1

    async def _respond(self) -> None:
        if self.response_task is not None and not self.response_task.done():
            await self.send({"type": "error", "error": {
                "type": "invalid_request_error", "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response in progress"}})
            return
        tool_output, self.pending_tool_output = self.pending_tool_output, None
        text = " ".join(self.pending_text).strip()
        audio_secs = self.pending_audio_secs
        self.pending_text, self.pending_audio_secs = [], 0.0
        self.response_task = asyncio.get_running_loop().create_task(self._response(text, audio_secs, tool_output))

    def _script(self, text: str, tool_output: dict | None) -> tuple[str, str, Rule | None, int]:
        """(what the reply answers, reply, rule, input text tokens)."""
        double = self.double
        if tool_output is not None:
            output = str(tool_output.get("output") or "")
            return output, double.after_tool_reply.format(output=output), None, _words(output)
        if text:
            rule = double.pick_rule(text)
            if rule is not None:
                return text, rule.reply, rule, 0
            return text, double.default_reply.format(text=text), None, 0
        instructions = str(self.log.session.get("instructions") or "")
        greeting = GREETING.search(instructions)
        return "", greeting.group("line") if greeting else double.default_greeting, None, _words(instructions)

    async def _response(self, text: str, audio_secs: float, tool_output: dict | None) -> None:
        response_id = "resp_" + uuid.uuid4().hex[:16]
        answered, reply, rule, text_tokens = self._script(text, tool_output)
        record = {"id": response_id, "answered": answered, "reply": reply, "tool": None, "status": "in_progress",
                  "started_at": time.monotonic()}
        self.double.responses.append(record)
        output_items: list[dict] = []
        out_audio_secs, out_text_tokens = 0.0, 0
        try:
            await self.send({"type": "response.created", "response": {
                "id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}})
            if self.double.first_audio_delay_secs:
                await asyncio.sleep(self.double.first_audio_delay_secs)
            if rule is not None and rule.status:
                # The API's error event (429: out of rate limit); the session is unusable after it.
                code = "rate_limit_exceeded" if rule.status == 429 else "server_error"
                await self.send({"type": "error", "error": {"type": "invalid_request_error" if rule.status < 500
                                                            else "server_error", "code": code,
                                                            "message": f"Error {rule.status}: {code}"}})
                record.update(status="failed", usage=self._usage(audio_secs, text_tokens, 0.0, 0))
                return
            if rule is not None and rule.tool:
                arguments = json.dumps(rule.arguments)
                item = {"id": _item_id(), "object": "realtime.item", "type": "function_call",
                        "status": "completed", "name": rule.tool, "call_id": "call_" + uuid.uuid4().hex[:12],
                        "arguments": arguments}
                output_items.append(item)
                record["tool"] = {"name": rule.tool, "arguments": dict(rule.arguments), "call_id": item["call_id"]}
                await self.send({"type": "conversation.item.added", "item": {**item, "arguments": ""}})
                await self.send({"type": "response.function_call_arguments.done", "response_id": response_id,
                                 "item_id": item["id"], "output_index": 0, "call_id": item["call_id"],
                                 "arguments": arguments})
                await self.send({"type": "conversation.item.done", "item": item})
                out_text_tokens = _words(arguments)
            elif reply:
                item = {"id": _item_id(), "object": "realtime.item", "type": "message", "role": "assistant",
                        "status": "in_progress", "content": []}
                output_items.append(item)
                await self.send({"type": "conversation.item.added", "item": item})
                part = {"response_id": response_id, "item_id": item["id"], "output_index": 0, "content_index": 0}
                await self.send({"type": "response.output_audio_transcript.delta", **part, "delta": reply})
                audio = tone(len(reply) * self.double.secs_per_char, SAMPLE_RATE, frequency=440.0)
                chunk = SAMPLE_RATE * 2 // 10  # 100 ms per delta
                for start in range(0, len(audio), chunk):
                    await self.send({"type": "response.output_audio.delta", **part,
                                     "delta": base64.b64encode(audio[start:start + chunk]).decode()})
                    out_audio_secs += len(audio[start:start + chunk]) / (SAMPLE_RATE * 2)
                    await asyncio.sleep(0)
                await self.send({"type": "response.output_audio.done", **part})
                await self.send({"type": "response.output_audio_transcript.done", **part, "transcript": reply})
                item = {**item, "status": "completed",
                        "content": [{"type": "output_audio", "transcript": reply}]}
                output_items[-1] = item
                await self.send({"type": "conversation.item.done", "item": item})
                out_text_tokens = _words(reply)
            status = "completed"
        except asyncio.CancelledError:
            status = "cancelled"
        usage = self._usage(audio_secs, text_tokens, out_audio_secs, out_text_tokens)
        record.update(status=status, usage=usage)
        try:
            await self.send({"type": "response.done", "response": {
                "id": response_id, "object": "realtime.response", "status": status, "output": output_items,
                "usage": usage}})
        except ConnectionClosed:
            pass

    @staticmethod
    def _usage(in_audio_secs: float, in_text: int, out_audio_secs: float, out_text: int) -> dict:
        in_audio = round(in_audio_secs * INPUT_AUDIO_TOKENS_PER_SEC)
        out_audio = round(out_audio_secs * OUTPUT_AUDIO_TOKENS_PER_SEC)
        return {"total_tokens": in_audio + in_text + out_audio + out_text,
                "input_tokens": in_audio + in_text, "output_tokens": out_audio + out_text,
                "input_token_details": {"text_tokens": in_text, "audio_tokens": in_audio, "cached_tokens": 0},
                "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio}}


class OpenAIRealtimeDouble(BackgroundLoopDouble):
    thread_name = "openai-realtime-double"

    def __init__(
        self,
        *,
        rules: list[Rule] | None = None,
        book: TranscriptBook | None = None,
        default_reply: str = "You said: {text}",
        after_tool_reply: str = "Done.",
        default_greeting: str = "Hello.",
        secs_per_char: float = 0.06,
        first_audio_delay_secs: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.rules = list(rules or [])
        self.book = book or TranscriptBook.from_fixtures()
        self.default_reply = default_reply
        self.after_tool_reply = after_tool_reply
        self.default_greeting = default_greeting
        self.secs_per_char = secs_per_char
        self.first_audio_delay_secs = first_audio_delay_secs
        self.host, self.port = host, port
        self.sessions: list[RealtimeSession] = []
        self.responses: list[dict] = []
        self._server = None
        self._background_init()

    @property
    def base_url(self) -> str:
        """What a provider account stores (http: the vendor module turns it into the ws:// endpoint)."""
        return f"http://{self.host}:{self.port}/v1"

    def pick_rule(self, text: str) -> Rule | None:
        lowered = text.lower()
        for rule in self.rules:
            if rule.when.lower() in lowered:
                return rule
        return None

    def reset(self) -> None:
        self.sessions.clear()
        self.responses.clear()

    async def _handle(self, ws) -> None:
        request = ws.request
        parts = urlsplit(request.path)
        if parts.path.rstrip("/") != "/v1/realtime":
            await ws.close(4404, "unknown path")
            return
        log = RealtimeSession(api_key=request.headers.get("Authorization", "").removeprefix("Bearer "),
                              model=(parse_qs(parts.query).get("model") or [""])[0])
        self.sessions.append(log)
        connection = _Connection(self, ws, log)
        try:
            await connection.send({"type": "session.created", "session": {
                "type": "realtime", "object": "realtime.session", "id": "sess_double", "model": log.model}})
            async for raw in ws:
                await connection.handle(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            await connection._cancel_response()

    async def start_async(self) -> None:
        self._server = await serve(self._handle, self.host, self.port, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1] if hasattr(self._server, "sockets") else self.port

    async def stop_async(self) -> None:
        self._server.close()
        await self._server.wait_closed()
