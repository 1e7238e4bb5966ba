"""Deepgram's live transcription websocket (`GET /v1/listen`), for tests and benchmarks.

Speaks the wire protocol Pipecat's `DeepgramSTTService` (the Deepgram SDK) speaks to Deepgram:
query parameters (encoding=linear16, sample_rate, interim_results, endpointing, keyterm...), the
`Authorization: Token <key>` header, binary audio in; JSON `Results` out (interim ones while the
caller talks when `interim_results=true`, then `is_final` + `speech_final` at the end of speech),
`Finalize` answered by a final result marked `from_finalize`, `KeepAlive` accepted, `CloseStream`
answered by `Metadata` and a close. What was said is looked up in a `TranscriptBook`; interim results
carry the words of the utterance heard so far (`TranscriptBook.transcribe_so_far`).

Timing, kept no kinder than Deepgram's: an interim result goes out every `interim_every_secs` of audio
received since the utterance began (pauses included), and holds only the words whose audio ended at least
RECOGNITION_LAG_SECS before (`TranscriptBook.register`'s word ends; a word is never sent before the audio
holding it has arrived). What Deepgram documents: the example stream on "Using Interim Results"
(developers.deepgram.com/docs/using-interim-results) shows interim results about one per second of audio
(transcripts covering 0-1.1 s, 0-2.1 s, 0-3.1 s, ...; on "Interim Results", /docs/interim-results, the first
one ends at 1.04 s with two words); a Deepgram engineer calls a transcript latency of 200-350 ms
unsurprising (github.com/orgs/deepgram/discussions/1006, measured with Deepgram's "Measuring streaming
latency" guide, network included). We found no documented cadence faster than that example: the default
0.25 s is an optimistic reading, so `benchmarks/turn_taking.py --interim-every 1.0` measures the documented one.

Mounted on the OpenAI-compatible double's server (`devtools.doubles.openai_server`), so one
double serves both and shares its book: point the Deepgram vendor's base URL at
`ws://127.0.0.1:<port>`.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

from devtools.doubles.transcripts import TranscriptBook

FRAME_SECS = 0.02
VOICED_DBFS = -45.0  # the book's own "voiced" threshold
MIN_ENDPOINT_SECS = 0.2  # Deepgram's 10 ms default endpointing is on its own VAD, not raw energy gaps
# A longer silence (and not shorter than the endpointing) starts a new utterance (the book knows utterances,
# not words).
UTTERANCE_GAP_SECS = 0.6
PRE_ROLL_SECS = 0.1
# How long after a word ends its audio Deepgram's transcript holds it (the low end of 200-350 ms, see above:
# that figure includes the network, which the double has not).
RECOGNITION_LAG_SECS = 0.2


@dataclass
class _Stream:
    """One connection's audio. An utterance runs from the first voiced frame to a silence of
    UTTERANCE_GAP_SECS (or a `Finalize`); inside it, a pause of the endpointing length ends a
    final result with the words heard since the previous one, as Deepgram's endpointing does."""

    book: TranscriptBook
    sample_rate: int
    interim_results: bool
    endpoint_secs: float
    interim_every_secs: float
    lag_secs: float = RECOGNITION_LAG_SECS
    received_secs: float = 0.0
    recent: bytearray = field(default_factory=bytearray)  # pre-roll before speech starts
    utterance: bytearray = field(default_factory=bytearray)
    start_secs: float | None = None
    silence_secs: float = 0.0
    since_interim_secs: float = 0.0  # audio received since the last interim result (or the utterance began)
    finalized_words: int = 0  # words of this utterance already sent in final results
    last_interim: str = ""
    pending: bytearray = field(default_factory=bytearray)

    def feed(self, pcm: bytes) -> list[dict]:
        """Audio in; the results Deepgram would send by the end of it."""
        self.pending.extend(pcm)
        frame_bytes = int(self.sample_rate * FRAME_SECS) * 2
        results = []
        while len(self.pending) >= frame_bytes:
            frame = bytes(self.pending[:frame_bytes])
            del self.pending[:frame_bytes]
            results.extend(self._frame(frame))
        return results

    def _frame(self, frame: bytes) -> list[dict]:
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        voiced = 10 * np.log10(float(np.mean(samples**2)) + 1e-10) > VOICED_DBFS
        self.received_secs += FRAME_SECS
        if self.start_secs is None:
            self.recent.extend(frame)
            del self.recent[: max(0, len(self.recent) - int(self.sample_rate * PRE_ROLL_SECS) * 2)]
            if not voiced:
                return []
            self.start_secs = self.received_secs - len(self.recent) / 2 / self.sample_rate
            self.utterance = bytearray(self.recent)
            self.recent.clear()
            self.silence_secs = self.since_interim_secs = 0.0
            self.finalized_words = 0
            return []
        self.utterance.extend(frame)
        self.since_interim_secs += FRAME_SECS
        results = []
        if voiced:
            self.silence_secs = 0.0
        else:
            was_silent = self.silence_secs
            self.silence_secs += FRAME_SECS
            if was_silent < self.endpoint_secs <= self.silence_secs:
                final = self.final(from_finalize=False, end_utterance=False)
                if final is not None:
                    results.append(final)
                self.since_interim_secs = 0.0
            if self.silence_secs >= max(UTTERANCE_GAP_SECS, self.endpoint_secs):  # (after the endpoint's final)
                self._reset()
                return results
        if not self.interim_results or self.since_interim_secs < self.interim_every_secs:
            return results
        self.since_interim_secs = 0.0
        heard = self._words_since_final(self.book.transcribe_so_far(bytes(self.utterance), self.sample_rate,
                                                                    lag_secs=self.lag_secs))
        if heard and heard != self.last_interim:
            self.last_interim = heard
            results.append(self._result(heard, is_final=False))
        return results

    def _words_since_final(self, text: str) -> str:
        return " ".join(text.split()[self.finalized_words:])

    def final(self, *, from_finalize: bool, end_utterance: bool = True) -> dict | None:
        """A final result with the words heard since the last one ("" when none); a `Finalize` always gets
        an answer, an endpoint only when there were words."""
        text = ""
        if self.start_secs is not None:
            audio = bytes(self.utterance)
            # The line whose beginning this is first (an endpoint inside a line, "Sorry," before "can I ask..."):
            # matched as a whole, a beginning can pass for a short line it is not ("Sorry," for "Mm-hmm.").
            whole = (self.book.transcribe_so_far(audio, self.sample_rate, min_secs=0.1)
                     or self.book.transcribe(audio, self.sample_rate))
            text = self._words_since_final(whole)
            self.finalized_words += len(text.split())
        result = self._result(text, is_final=True, from_finalize=from_finalize) if text or from_finalize else None
        self.last_interim = ""
        if end_utterance:
            self._reset()
        return result

    def _reset(self) -> None:
        self.utterance = bytearray()
        self.start_secs = None
        self.finalized_words = 0
        self.last_interim = ""

    def _result(self, text: str, *, is_final: bool, from_finalize: bool = False) -> dict:
        start = self.start_secs if self.start_secs is not None else self.received_secs
        duration = max(0.0, self.received_secs - start)
        words = [{"word": w.strip(".,?!").lower(), "punctuated_word": w, "start": start, "end": start + duration,
                  "confidence": 0.99} for w in text.split()]
        return {
            "type": "Results", "channel_index": [0, 1], "duration": round(duration, 3), "start": round(start, 3),
            "is_final": is_final, "speech_final": is_final and not from_finalize, "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.99 if text else 0.0, "words": words}]},
            "metadata": {"request_id": str(uuid.uuid4()), "model_info": {"name": "double", "version": "1",
                                                                         "arch": "double"},
                         "model_uuid": str(uuid.uuid4())},
        }


class DeepgramListen:
    """The `/v1/listen` websocket handler. `interim_every_secs`: how much audio goes by between interim
    results; `lag_secs`: how long after a word's audio it can be in one (see the module's docstring)."""

    def __init__(self, book: TranscriptBook, *, requests: list | None = None, interim_every_secs: float = 0.25,
                 lag_secs: float = RECOGNITION_LAG_SECS, api_key: str | None = None):
        self.book = book
        self.requests = requests if requests is not None else []
        self.interim_every_secs = interim_every_secs
        self.lag_secs = lag_secs
        self.api_key = api_key  # None: any key

    async def handle(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Token ") or (self.api_key and authorization != f"Token {self.api_key}"):
            return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401)
        query = request.query
        if query.get("encoding", "linear16") != "linear16":
            return web.json_response({"err_code": "Bad Request", "err_msg": "the double takes linear16 only"},
                                     status=400)
        stream = _Stream(
            book=self.book, sample_rate=int(query.get("sample_rate", "16000")),
            interim_results=query.get("interim_results", "false") == "true",
            endpoint_secs=max(MIN_ENDPOINT_SECS, int(query.get("endpointing", "10") or 10) / 1000),
            interim_every_secs=self.interim_every_secs, lag_secs=self.lag_secs,
        )
        record = {"kind": "deepgram_listen", "at": time.monotonic(), "query": {k: query.getall(k) for k in query},
                  "results": []}
        self.requests.append(record)
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def send(result: dict) -> None:
            record["results"].append({"at": time.monotonic(), "is_final": result["is_final"],
                                      "transcript": result["channel"]["alternatives"][0]["transcript"]})
            await ws.send_str(json.dumps(result))

        async for message in ws:
            if message.type == WSMsgType.BINARY:
                for result in stream.feed(message.data):
                    await send(result)
            elif message.type == WSMsgType.TEXT:
                kind = json.loads(message.data).get("type")
                if kind == "Finalize":
                    await send(stream.final(from_finalize=True))
                elif kind == "CloseStream":
                    await ws.send_str(json.dumps({
                        "type": "Metadata", "transaction_key": "deprecated", "request_id": str(uuid.uuid4()),
                        "sha256": "", "created": "", "duration": round(stream.received_secs, 3), "channels": 1,
                        "models": [], "model_info": {}}))
                    await ws.close()
        return ws
