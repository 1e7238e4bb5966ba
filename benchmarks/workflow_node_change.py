"""Voice-to-voice of a turn that changes workflow node vs one that does not, in the same
calls (not a test). The Django-free runtime (apps/voice/testing.PlainMediaServer) with the
OpenAI-compatible double (no delays) and the Twilio caller double; each call: the caller
says hello.wav (the start node answers), then book-appointment.wav (the LLM takes the edge
to the booking node, Pipecat Flows sets the node's messages and tools, the LLM answers
there). A node change costs one more LLM request by design (the edge function, then the
new node's answer); with a real LLM that is one more time-to-first-token.

    .venv/bin/python benchmarks/workflow_node_change.py --calls 10 [--write]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The runtime needs no database, but the carrier registry it looks "twilio" up in reads Django settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from apps.voice.config import VoiceConfig  # noqa: E402
from apps.voice.testing import call_saying  # noqa: E402
from devtools.doubles.openai_server import OpenAIDouble, Rule  # noqa: E402

GRAPH = {
    "version": 1,
    "nodes": [
        {"id": "global", "type": "global", "prompt": "You answer the phone for Acme Dental."},
        {"id": "start", "type": "start", "greeting": "Hi.", "prompt": "Find out what the caller wants."},
        {"id": "booking", "type": "conversation", "prompt": "Book the appointment.", "tools": ["end_call"]},
    ],
    "edges": [{"id": "e1", "from": "start", "to": "booking", "condition": "The caller wants an appointment"}],
}


async def one_call(double) -> tuple[int, int]:
    hooks = await call_saying(base_url=double.base_url, config=VoiceConfig(graph=GRAPH, vad_stop_secs=0.5),
                              lines=("hello.wav", "book-appointment.wav"))
    stay, move = hooks.turns[1], hooks.turns[2]
    assert (stay["node"], move["node"]) == ("start", "booking"), (stay["node"], move["node"])
    return stay["voice_to_voice_ms"], move["voice_to_voice_ms"]


async def main(calls: int) -> dict:
    pairs = []
    with OpenAIDouble(rules=[
        Rule(when="book an appointment", tool="go_to_booking", offered_only=True),
        Rule(when="book an appointment", reply="Tuesday at two is free."),
        Rule(when="who is this", reply="This is Acme Dental."),
    ]) as double:
        for _ in range(calls):
            pairs.append(await one_call(double))
    stays, moves = [p[0] for p in pairs], [p[1] for p in pairs]
    added = [move - stay for stay, move in pairs]
    return {"calls": calls, "stay_p50": statistics.median(stays), "move_p50": statistics.median(moves),
            "added_p50": statistics.median(added), "added_max": max(added), "pairs": pairs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = parser.parse_args()
    result = asyncio.run(main(args.calls))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = (
        f"\n## Workflow node change vs none, same calls ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, HEAD {head})\n\n"
        f"Command: `.venv/bin/python benchmarks/workflow_node_change.py --calls {args.calls}`. Django-free runtime "
        "(PlainMediaServer), doubles without delay, VAD stop 0.5 s (included in voice-to-voice); per call the caller's "
        "second line stays in the start node, the third moves to the booking node (edge function, Flows node set-up, "
        "one more LLM request).\n\n"
        "| calls | voice-to-voice p50, no node change | p50, node change | added per call p50 | added max |\n"
        "|---|---|---|---|---|\n"
        f"| {result['calls']} | {result['stay_p50']:.0f} ms | {result['move_p50']:.0f} ms | "
        f"{result['added_p50']:.0f} ms | {result['added_max']} ms |\n\n"
        f"Pairs (no change, change) in ms: {result['pairs']}\n"
    )
    print(text)
    if args.write:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as results:
            results.write(text)
