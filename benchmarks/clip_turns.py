"""Voice-to-voice of a turn answered with a pre-recorded clip vs one spoken by TTS, in the
same calls (not a test). The Django-free runtime (apps/voice/testing.PlainMediaServer) with
the OpenAI-compatible double and the Twilio caller double; each call: the caller says
hello.wav (the LLM answers `[[clip:acme-intro]]`: the clip plays), then opening-hours.wav
(the LLM answers in words: the TTS speaks). Besides voice-to-voice, the time from the LLM's
first token reaching the clip processor to the first agent audio sent to the carrier: what
a turn adds after the LLM. `--tts-first-byte` gives the TTS double a first-byte delay (a
real vendor's); 0 measures only our side.

    .venv/bin/python benchmarks/clip_turns.py --calls 10 [--tts-first-byte 0.15] [--write]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()  # the carrier registry behind PlainMediaServer reads settings (no database)

from pipecat.frames.frames import LLMFullResponseStartFrame, LLMTextFrame  # noqa: E402

from apps.voice.config import VoiceConfig  # noqa: E402
from apps.voice.processors.clips import ClipPlayer  # noqa: E402
from apps.voice.testing import call_saying  # noqa: E402
from apps.voice.transport import MediaStreamTransport  # noqa: E402
from devtools.doubles.audio import tone  # noqa: E402
from devtools.doubles.openai_server import Delays, OpenAIDouble, Rule  # noqa: E402

CLIPS = ({"name": "acme-intro", "words": "This is Acme Dental, how can I help?", "tags": [], "interruptible": True,
          "pcm": tone(1.2, 8000, frequency=1000.0)},)

# Benchmark-only probes: when the first token of each LLM reply reaches the clip processor, and
# when agent audio goes to the carrier.
FIRST_TOKENS: list[float] = []
AUDIO_SENT: list[float] = []


def _probe() -> None:
    process_frame = ClipPlayer.process_frame
    note_audio_sent = MediaStreamTransport.note_audio_sent

    async def timed(self, frame, direction):
        if isinstance(frame, LLMFullResponseStartFrame):
            self._bench_waiting = True
        elif isinstance(frame, LLMTextFrame) and getattr(self, "_bench_waiting", False):
            self._bench_waiting = False
            FIRST_TOKENS.append(time.monotonic())
        return await process_frame(self, frame, direction)

    def sent(self):
        AUDIO_SENT.append(time.monotonic())
        return note_audio_sent(self)

    ClipPlayer.process_frame = timed
    MediaStreamTransport.note_audio_sent = sent


def _after_llm_ms(first_token: float) -> float:
    return (min(at for at in AUDIO_SENT if at >= first_token) - first_token) * 1000


async def one_call(double) -> dict:
    FIRST_TOKENS.clear()
    AUDIO_SENT.clear()
    config = VoiceConfig(greeting="Hi.", vad_stop_secs=0.5, clips=CLIPS)
    hooks = await call_saying(base_url=double.base_url, config=config, lines=("hello.wav", "opening-hours.wav"))
    clip_turn, tts_turn = hooks.turns[1], hooks.turns[2]
    assert clip_turn["clips"] == [{"name": "acme-intro", "source": "llm"}] and tts_turn["clips"] == [], hooks.turns
    assert len(FIRST_TOKENS) == 2, FIRST_TOKENS
    return {"clip_v2v": clip_turn["voice_to_voice_ms"], "tts_v2v": tts_turn["voice_to_voice_ms"],
            "clip_after_llm": _after_llm_ms(FIRST_TOKENS[0]), "tts_after_llm": _after_llm_ms(FIRST_TOKENS[1])}


async def main(calls: int, tts_first_byte: float) -> dict:
    _probe()
    results = []
    with OpenAIDouble(rules=[Rule(when="who is this", reply="[[clip:acme-intro]]"),
                             Rule(when="opening hours", reply="We are open from nine to five on Saturday.")],
                      delays=Delays(tts_first_byte_secs=tts_first_byte)) as double:
        for _ in range(calls):
            results.append(await one_call(double))
    summary = {"calls": calls, "tts_first_byte": tts_first_byte, "results": results}
    for key in ("clip_v2v", "tts_v2v", "clip_after_llm", "tts_after_llm"):
        values = sorted(result[key] for result in results)
        summary[f"{key}_p50"] = statistics.median(values)
        summary[f"{key}_max"] = values[-1]
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--tts-first-byte", type=float, default=0.0, help="the TTS double's first-byte delay (s)")
    parser.add_argument("--write", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = parser.parse_args()
    result = asyncio.run(main(args.calls, args.tts_first_byte))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    text = (
        f"\n## Clip turn vs TTS turn, same calls ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, HEAD {head})\n\n"
        f"Command: `.venv/bin/python benchmarks/clip_turns.py --calls {args.calls} --tts-first-byte "
        f"{args.tts_first_byte:g}`. Django-free runtime (PlainMediaServer), OpenAI-compatible double (LLM at once; TTS "
        f"first byte {args.tts_first_byte * 1000:.0f} ms), VAD stop 0.5 s (included in voice-to-voice). Per call the "
        "caller's first line is answered with `[[clip:acme-intro]]` (the clip plays), the second in words (TTS). "
        "\"After the LLM\": from the reply's first token reaching the clip processor to the first agent audio sent "
        f"to the carrier. Load average during the run {load[0]:.1f} on 2 shared vCPUs: noisy.\n\n"
        "| calls | voice-to-voice p50, clip turn | p50, TTS turn | after the LLM p50, clip | max, clip | "
        "after the LLM p50, TTS | max, TTS |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {result['calls']} | {result['clip_v2v_p50']:.0f} ms | {result['tts_v2v_p50']:.0f} ms | "
        f"{result['clip_after_llm_p50']:.1f} ms | {result['clip_after_llm_max']:.1f} ms | "
        f"{result['tts_after_llm_p50']:.1f} ms | {result['tts_after_llm_max']:.1f} ms |\n\n"
        "Per call (clip v2v, TTS v2v, clip after LLM, TTS after LLM) in ms: "
        f"{[(r['clip_v2v'], r['tts_v2v'], round(r['clip_after_llm'], 1), round(r['tts_after_llm'], 1)) for r in result['results']]}\n"
    )
    print(text)
    if args.write:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as results:
            results.write(text)
