"""An OpenAI-compatible HTTP server for tests, simulations and benchmarks.

Speaks the real wire protocol over a real socket, so the production provider
code (Pipecat's OpenAI services, pointed here by `base_url`) is what runs:

- POST /v1/chat/completions   SSE streaming, tool calls, usage chunk; scripted by rules
                              (`"stream": false`: one JSON completion of the rule's reply)
- POST /v1/audio/transcriptions  multipart WAV in, {"text": ...} out (looked up in a TranscriptBook;
                              `mishears` words come out wrong unless the `prompt` names them)
- POST /v1/audio/speech       24 kHz 16-bit PCM out (OpenAI's `pcm` format): a tone whose
                              length follows the text, streamed in chunks
- POST /v1/embeddings         float vectors (default 1536 dimensions, or the request's
                              `dimensions`): hashed bag of words, deterministic, L2-normalised,
                              so texts sharing words are near (a lexical stand-in, not a model)
- POST /_double/transcripts   register audio + text at run time (multipart: file, text)
- GET  /_double/requests      what was asked so far (for assertions)
- GET  /v1/listen             Deepgram's live transcription websocket (devtools.doubles.deepgram_listen),
                              same TranscriptBook; Deepgram's base URL is `ws://<host>:<port>`

    double = OpenAIDouble(rules=[Rule(when="real person", tool="transfer_to_human")])
    double.start()              # background thread with its own event loop
    ... base_url=double.base_url ...
    double.stop()

Or run standalone: `python -m devtools.doubles.openai_server --port 8765`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from devtools.doubles.audio import read_wav, tone
from devtools.doubles.background import BackgroundLoopDouble
from devtools.doubles.deepgram_listen import DeepgramListen
from devtools.doubles.transcripts import TranscriptBook

SPEECH_SAMPLE_RATE = 24000  # what OpenAI's `pcm` response format is


@dataclass
class Rule:
    """When the latest user message contains `when` (case-insensitive; "" matches
    anything), answer with `reply` and/or call `tool` with `arguments`."""

    when: str = ""
    reply: str = ""
    tool: str | None = None
    arguments: dict = field(default_factory=dict)
    delay_secs: float | None = None  # before the first token; None = the double's default
    # Answer with this HTTP error instead (429: rate limited, OpenAI's error body); `headers`
    # e.g. {"retry-after": "30", "retry-after-ms": "10"} (the SDK retries after retry-after-ms).
    status: int | None = None
    headers: dict = field(default_factory=dict)
    # Only for requests made with this API key (None: any key), e.g. one throttled key of several.
    api_key: str | None = None
    # Only when the request offers `tool` (a workflow node's functions change from node to node).
    offered_only: bool = False
    # Only when the request's system messages contain this text (case-insensitive): tells two
    # LLMs on one double apart (an agent and a test persona) or a prompt from its edited version.
    system: str | None = None


@dataclass
class Delays:
    llm_first_token_secs: float = 0.0
    llm_token_interval_secs: float = 0.0
    stt_secs: float = 0.0
    tts_first_byte_secs: float = 0.0


def _word_count(text: str) -> int:
    return len(text.split())


class OpenAIDouble(BackgroundLoopDouble):
    thread_name = "openai-double"

    def __init__(
        self,
        *,
        rules: list[Rule] | None = None,
        delays: Delays | None = None,
        book: TranscriptBook | None = None,
        after_tool_reply: str = "",
        default_reply: str = "You said: {text}",
        tts_secs_per_char: float = 0.02,
        mishears: dict[str, str] | None = None,
        interim_every_secs: float = 0.25,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.rules = list(rules or [])
        self.delays = delays or Delays()
        self.book = book or TranscriptBook.from_fixtures()
        self.after_tool_reply = after_tool_reply
        self.default_reply = default_reply
        self.tts_secs_per_char = tts_secs_per_char
        # Domain words the "recogniser" gets wrong ({"KYC": "kayc"}) unless the request's `prompt`
        # names them: what keyword boosting does at a real vendor.
        self.mishears = dict(mishears or {})
        self.interim_every_secs = interim_every_secs  # the Deepgram /v1/listen double's interim cadence
        self.host = host
        self.port = port
        self.requests: list[dict] = []
        self.hang_llm = False  # when True, chat completions never answer (provider timeout)
        self._runner: web.AppRunner | None = None
        self._background_init()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/_double/transcripts", self._register_transcript)
        app.router.add_get("/_double/requests", self._list_requests)
        app.router.add_get("/v1/listen", DeepgramListen(self.book, requests=self.requests,
                                                     interim_every_secs=self.interim_every_secs).handle)
        return app

    async def start_async(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def requests_of(self, kind: str) -> list[dict]:
        return [request for request in self.requests if request["kind"] == kind]

    # -- chat completions --------------------------------------------------------------------

    def _pick_rule(self, user_text: str, api_key: str = "", offered: tuple[str, ...] = (),
                   system: str = "") -> Rule | None:
        lowered = user_text.lower()
        for rule in self.rules:
            if rule.offered_only and rule.tool not in offered:
                continue
            if rule.system is not None and rule.system.lower() not in system.lower():
                continue
            if rule.when.lower() in lowered and rule.api_key in (None, api_key):
                return rule
        return None

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        user_text = ""
        for message in reversed(messages):
            if message.get("role") == "user":
                user_text = _content_text(message.get("content"))
                break
        after_tool = last.get("role") == "tool"
        api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        offered = tuple(tool_def["function"]["name"] for tool_def in body.get("tools") or [])
        system = "\n".join(_content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
        rule = None if after_tool else self._pick_rule(user_text, api_key, offered, system)
        if after_tool:
            reply, tool, arguments = self.after_tool_reply, None, {}
        elif rule is not None:
            reply, tool, arguments = rule.reply, rule.tool, rule.arguments
        else:
            reply, tool, arguments = self.default_reply.format(text=user_text), None, {}
        delay = rule.delay_secs if rule and rule.delay_secs is not None else self.delays.llm_first_token_secs
        self.requests.append(
            {
                "kind": "chat",
                "at": time.monotonic(),
                "model": body.get("model"),
                "api_key": api_key,
                "user_text": user_text,
                "system": system,
                "after_tool": after_tool,
                "tools": [tool_def["function"]["name"] for tool_def in body.get("tools") or []],
                "messages": messages,
            }
        )
        if self.hang_llm:
            await asyncio.sleep(3600)
        if rule is not None and rule.status:
            code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(rule.status, "error")
            return web.json_response(
                {"error": {"message": f"double: HTTP {rule.status} ({code})", "type": "requests", "param": None,
                           "code": code}},
                status=rule.status, headers=rule.headers,
            )

        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = body.get("model", "double")
        if body.get("stream") is False:  # a one-shot completion (Pipecat's run_inference)
            if delay:
                await asyncio.sleep(delay)
            prompt_tokens = sum(_word_count(_content_text(m.get("content"))) for m in messages)
            return web.json_response({
                "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _word_count(reply),
                          "total_tokens": prompt_tokens + _word_count(reply)},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(choices: list, usage: dict | None = None):
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
            }
            if usage is not None:
                chunk["usage"] = usage
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if delay:
            await asyncio.sleep(delay)
        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        words = reply.split(" ") if reply else []
        for position, word in enumerate(words):
            piece = word if position == 0 else " " + word
            await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            if self.delays.llm_token_interval_secs:
                await asyncio.sleep(self.delays.llm_token_interval_secs)
        if tool:
            call = {
                "index": 0,
                "id": f"call_{uuid.uuid4().hex[:8]}",
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(arguments)},
            }
            await send([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        await send([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool else "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt_tokens = sum(_word_count(_content_text(m.get("content"))) for m in messages)
            completion_tokens = _word_count(reply) + (1 if tool else 0)
            await send(
                [],
                usage={
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # -- speech to text ----------------------------------------------------------------------

    async def _transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        audio = upload.file.read() if hasattr(upload, "file") else bytes(upload)
        pcm, rate = read_wav(audio)
        text = self.book.transcribe(pcm, rate)
        prompt = str(form.get("prompt") or "")
        for word, heard in self.mishears.items():
            if word.lower() not in prompt.lower():
                text = re.sub(rf"\b{re.escape(word)}\b", heard, text)
        self.requests.append(
            {
                "kind": "transcription",
                "at": time.monotonic(),
                "model": form.get("model"),
                "prompt": prompt,
                "audio_secs": len(pcm) / 2 / rate,
                "text": text,
            }
        )
        if self.delays.stt_secs:
            await asyncio.sleep(self.delays.stt_secs)
        return web.json_response({"text": text})

    async def _register_transcript(self, request: web.Request) -> web.Response:
        form = await request.post()
        pcm, rate = read_wav(form["file"].file.read())
        self.book.register(pcm, rate, str(form["text"]))
        return web.json_response({"ok": True})

    # -- embeddings --------------------------------------------------------------------------

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append({"kind": "embeddings", "at": time.monotonic(), "model": body.get("model"),
                              "api_key": api_key, "inputs": len(inputs), "dimensions": dimensions})
        rule = next((rule for rule in self.rules if rule.tool == "embeddings" and rule.status
                     and rule.api_key in (None, api_key)), None)
        if rule is not None:
            return web.json_response({"error": {"message": f"double: HTTP {rule.status}", "type": "requests",
                                                 "param": None, "code": "error"}}, status=rule.status,
                                     headers=rule.headers)
        if not inputs or not all(isinstance(item, str) and item for item in inputs):
            return web.json_response({"error": {"message": "input must be a non-empty string or list of strings",
                                                 "type": "invalid_request_error", "param": "input", "code": None}},
                                     status=400)
        data = [{"object": "embedding", "index": index, "embedding": hashed_embedding(text, dimensions)}
                for index, text in enumerate(inputs)]
        tokens = sum(_word_count(text) for text in inputs)
        return web.json_response({"object": "list", "data": data, "model": body.get("model", "double"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    # -- text to speech ----------------------------------------------------------------------

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = body.get("input", "")
        self.requests.append({"kind": "speech", "at": time.monotonic(), "model": body.get("model"), "text": text})
        pcm = tone(max(0.1, len(text) * self.tts_secs_per_char), SPEECH_SAMPLE_RATE)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        if self.delays.tts_first_byte_secs:
            await asyncio.sleep(self.delays.tts_first_byte_secs)
        chunk = SPEECH_SAMPLE_RATE * 2 // 10  # 100 ms
        for offset in range(0, len(pcm), chunk):
            await response.write(pcm[offset : offset + chunk])
        await response.write_eof()
        return response

    async def _list_requests(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{k: v for k, v in item.items() if k != "messages"} for item in self.requests]
        )


EMBEDDING_DIMENSIONS = 1536  # text-embedding-3-small's


def hashed_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic vector for `text`: each lower-cased word adds ±1 at a hashed index."""
    import hashlib
    import math
    import re

    vector = [0.0] * dimensions
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the OpenAI-compatible double.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rules", help="JSON list of rules: [{when, reply, tool, arguments, delay_secs, status, headers, api_key}]")
    parser.add_argument("--llm-delay", type=float, default=0.0)
    parser.add_argument("--stt-delay", type=float, default=0.0)
    parser.add_argument("--tts-delay", type=float, default=0.0)
    args = parser.parse_args()
    rules = [Rule(**item) for item in json.loads(args.rules)] if args.rules else []
    double = OpenAIDouble(
        rules=rules,
        delays=Delays(
            llm_first_token_secs=args.llm_delay, stt_secs=args.stt_delay, tts_first_byte_secs=args.tts_delay
        ),
        host=args.host,
        port=args.port,
    )
    print(f"OpenAI double on {double.base_url}", flush=True)
    web.run_app(double.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
