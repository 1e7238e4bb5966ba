"""Turn taking over the carrier protocol: today's settings beside the new ones, same run.

    .venv/bin/python benchmarks/turn_taking.py [--repeats 2] [--stt openai|deepgram] [--write]

Every trial is one call: a Twilio Media Streams caller (devtools.doubles.twilio_caller)
on a real websocket to the production bridge, session and pipeline (apps.voice.testing
PlainMediaServer), Pipecat's OpenAI services talking HTTP to the OpenAI-compatible
double, caller lines made with Piper (offline) and taught to the double's STT.

- backchannels: the agent is in the middle of a long answer (its greeting, ~5 s); the
  caller says an acknowledgement ("mm-hmm", "okay", ...) 0.8-2.4 s in. A false
  interruption is a `clear`, or the LLM asked to answer the acknowledgement.
- interruptions: the same, with a real interruption ("no no, that's wrong", ...). Stopped
  = a `clear` came and the agent's audio stopped; latency = the caller's first audible
  frame -> the `clear`.
- pauses: the caller pauses 0.8 s mid-sentence ("my account number is ... four five, seven
  two"). Premature = the agent's audio began before the caller's last word.
- voice-to-voice: ordinary questions (the shared caller fixtures), caller's last audible
  frame -> first audible agent frame.

`--stt openai` (default): OpenAI's STT, which transcribes a finished speech segment, so barge-in
counts words by time. `--stt deepgram`: Pipecat's Deepgram service streaming to the double's
`/v1/listen` (devtools.doubles.deepgram_listen), whose interim results let barge-in count words;
`--interim-every` sets how much audio goes by between its interim results (0.25 s: optimistic;
1.0 s: Deepgram's documented example, see that module).

Not a test: it prints the figures and, with --write, appends them to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The runtime needs no database, but the carrier registry it looks "twilio" up in reads Django settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

ACKNOWLEDGEMENTS = ("Mm-hmm.", "Okay.", "Uh-huh.", "Yeah.", "Right.", "Yes.", "Sure.", "I see.", "Got it.")
INTERRUPTIONS = ("No no, that's wrong.", "Sorry, can I ask something else?", "Wait, I have a question.",
                 "Hold on, that is not right.", "Actually, I meant Sunday.", "Stop, please.",
                 "Hang on, that's not what I asked.")
# (first part, rest): half pause after a word a sentence hardly ends on, half after a content word.
PAUSES = (
    ("My account number is", "four five, seven two."),
    ("I would like to book an appointment for", "Tuesday afternoon."),
    ("Can you send the invoice to", "my office address?"),
    ("The problem is that", "my card was declined."),
    ("My account number is four five", "seven two nine one."),
    ("I want to move my appointment", "to next Friday."),
    ("My date of birth is the fourth", "of July, nineteen eighty."),
    ("We have two children", "and a dog."),
)
ORDINARY = ("hello.wav", "opening-hours.wav", "yes.wav", "book-appointment.wav", "human-please.wav")
LONG_GREETING = " ".join(["We are open from nine to five on Saturday."] * 6)
OFFSETS = (0.8, 1.6, 2.4)  # seconds into the agent's answer when the caller speaks
LEAD_SECS = 0.2  # apps.voice.testing.caller_line's silence before the first word

STT = {"name": "openai", "interim_every_secs": 0.25}  # set by --stt and --interim-every

SETTINGS = {
    "today": {"interrupt_after_words": 0, "end_of_turn_model": False},
    "new": {},  # VoiceConfig's defaults (see `new_settings`)
}


def new_settings() -> str:
    """What "new" ran with, read from VoiceConfig's defaults."""
    from apps.voice.config import VoiceConfig

    defaults = VoiceConfig()
    words = defaults.interrupt_after_words
    interrupt = ("at any speech" if words == 0 else "at the first word that is not an acknowledgement" if words == 1
                 else f"after {words} words that are not acknowledgements")
    if defaults.end_of_turn_model:
        end = f"Smart Turn + transcript check, {defaults.max_pause_secs:g} s longest pause"
    else:
        end = f"end of turn at the VAD's {defaults.vad_stop_secs:g} s pause (the end-of-turn model is opt-in)"
    return f"interrupt {interrupt}, acknowledgements never interrupt, {end}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Figures:
    backchannels: int = 0
    false_interruptions: list[str] = field(default_factory=list)
    interruptions: int = 0
    stopped: int = 0
    clear_ms: list[float] = field(default_factory=list)
    pauses: int = 0
    premature: list[str] = field(default_factory=list)
    premature_function_word: int = 0
    v2v_ms: list[float] = field(default_factory=list)


async def _call(double, settings: dict, **config):
    from apps.voice.config import VoiceConfig
    from apps.voice.testing import PlainMediaServer
    from devtools.doubles.twilio_caller import TwilioCaller

    server = await PlainMediaServer(base_url=double.base_url, config=VoiceConfig(**settings, **config),
                                    stt=STT["name"]).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    return server, caller


async def _hang_up(server, caller) -> None:
    await caller.hang_up()
    await asyncio.wait_for(server.hooks[0].ended.wait(), 15)
    await server.stop()


async def over_the_agent(double, settings: dict, text: str, offset: float) -> tuple[bool, float | None, bool]:
    """The caller says `text` `offset` s into the agent's long answer: (the agent stopped:
    a `clear` and no audio from 0.1 s after it for 0.5 s; ms from the caller's first audible
    frame to the clear; the LLM was asked to answer what the caller said)."""
    from apps.voice.testing import caller_line

    server, caller = await _call(double, settings, greeting=LONG_GREETING)
    try:
        started = await caller.wait_for_agent_audio(timeout=10)
        chats_before = len(double.requests_of("chat"))
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        utterance = await caller.say(caller_line(text), text)
        await utterance.done.wait()
        await asyncio.sleep(1.2)
        speech_start = utterance.started_at + LEAD_SECS
        clears = [at for at in caller.clears if at > speech_start - 0.05]
        stopped = bool(clears) and not any(
            f.audible and clears[0] + 0.1 < f.at < clears[0] + 0.6 for f in caller.agent_frames)
        answered = len(double.requests_of("chat")) > chats_before
        return stopped, ((clears[0] - speech_start) * 1000 if clears else None), answered
    finally:
        await _hang_up(server, caller)


async def paused_line(double, settings: dict, parts: tuple[str, str]) -> bool:
    """True when the agent started talking before the caller finished the sentence."""
    from apps.voice.testing import caller_line

    server, caller = await _call(double, settings)
    try:
        await asyncio.sleep(0.3)
        utterance = await caller.say(caller_line(*parts, pause_secs=0.8), " / ".join(parts))
        await utterance.done.wait()
        try:
            first = await caller.wait_for_agent_audio(after=utterance.started_at, timeout=6)
        except TimeoutError:
            first = None
        return first is not None and first < utterance.speech_end_at
    finally:
        await _hang_up(server, caller)


async def ordinary_turns(double, settings: dict) -> list[float]:
    from devtools.doubles.audio import FIXTURES_DIR, read_wav

    server, caller = await _call(double, settings)
    values = []
    try:
        await asyncio.sleep(0.3)
        for name in ORDINARY:
            utterance = await caller.say(read_wav(FIXTURES_DIR / name)[0], name)
            await utterance.done.wait()
            heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=10)
            values.append((heard - utterance.speech_end_at) * 1000)
            await caller.wait_for_agent_quiet(quiet_secs=0.6)
    finally:
        await _hang_up(server, caller)
    return values


async def run(repeats: int, progress) -> dict[str, Figures]:
    from apps.voice.testing import teach_transcripts
    from devtools.doubles.openai_server import OpenAIDouble

    figures = {name: Figures() for name in SETTINGS}
    with OpenAIDouble(default_reply="Sure, I can help with that.",
                      interim_every_secs=STT["interim_every_secs"]) as double:
        teach_transcripts(double.book, *ACKNOWLEDGEMENTS, *INTERRUPTIONS, *[p for pair in PAUSES for p in pair])
        for repeat in range(repeats):
            for name, settings in SETTINGS.items():
                fig = figures[name]
                for index, text in enumerate(ACKNOWLEDGEMENTS):
                    offset = OFFSETS[(index + repeat) % len(OFFSETS)]
                    stopped, ms, answered = await over_the_agent(double, settings, text, offset)
                    fig.backchannels += 1
                    if stopped or ms is not None or answered:
                        fig.false_interruptions.append(text)
                progress(f"{name}: backchannels {len(fig.false_interruptions)}/{fig.backchannels} interrupted")
                for index, text in enumerate(INTERRUPTIONS):
                    offset = OFFSETS[(index + repeat) % len(OFFSETS)]
                    stopped, ms, _answered = await over_the_agent(double, settings, text, offset)
                    fig.interruptions += 1
                    if stopped:
                        fig.stopped += 1
                    if ms is not None:
                        fig.clear_ms.append(ms)
                progress(f"{name}: interruptions {fig.stopped}/{fig.interruptions} stopped")
                for parts in PAUSES:
                    fig.pauses += 1
                    if await paused_line(double, settings, parts):
                        fig.premature.append(" ... ".join(parts))
                progress(f"{name}: pauses {len(fig.premature)}/{fig.pauses} premature")
                fig.v2v_ms.extend(await ordinary_turns(double, settings))
                progress(f"{name}: voice-to-voice p50 {percentile(fig.v2v_ms, 50):.0f} ms")
    return figures


def head() -> str:
    import subprocess

    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True,
                          text=True).stdout.strip() or "?"


def dirty() -> bool:
    import subprocess

    return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=BASE_DIR,
                               capture_output=True, text=True).stdout.strip())


def report(figures: dict[str, Figures], command: str, load_average: str = "") -> str:
    from apps.voice.turns import sounds_unfinished

    stt = STT["name"]
    if stt == "deepgram":
        stt += f" double, an interim result every {STT['interim_every_secs']:g} s of audio"
    lines = [
        f"## Turn taking: backchannels, interruptions, mid-sentence pauses ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command}`  ",
        f"HEAD {head()}{' (uncommitted changes)' if dirty() else ''}; load average {load_average}  ",
        "One call per trial over Twilio Media Streams (PlainMediaServer: the production bridge, session and "
        f"pipeline; OpenAI-compatible double; STT: {stt}; Piper caller lines, 8 kHz). "
        "\"today\" = interruptions at any "
        f"speech, end of turn at the VAD's 0.5 s pause; \"new\" = VoiceConfig defaults ({new_settings()})"
        + "".join(f"; \"{name}\" = new, but interrupt after {name.split()[0]} words that are not acknowledgements"
                  for name in figures if name not in ("today", "new")) + ".",
        "",
        f"| figure | {' | '.join(figures)} | target |",
        f"| --- | {' | '.join('---' for _ in figures)} | --- |",
    ]
    new = figures["new"]

    def rate(part: int, whole: int) -> str:
        return f"{100 * part / whole:.0f} % ({part}/{whole})" if whole else "—"

    columns = list(figures.values())

    def row(name: str, cell, target: str) -> None:
        lines.append(f"| {name} | {' | '.join(cell(fig) for fig in columns)} | {target} |")

    row("backchannels during agent speech: false interruptions",
        lambda fig: rate(len(fig.false_interruptions), fig.backchannels), "≤ 5 %")
    row("real interruptions: agent stopped", lambda fig: rate(fig.stopped, fig.interruptions), "100 %")
    for q in (50, 95):
        row(f"caller speech start → `clear`, p{q}", lambda fig, q=q: f"{percentile(fig.clear_ms, q):.0f} ms",
            "≤ 600 ms" if q == 95 else "")
    row("0.8 s mid-sentence pauses: premature replies", lambda fig: rate(len(fig.premature), fig.pauses), "≤ 5 %")
    for q in (50, 95):
        row(f"voice-to-voice, ordinary turns, p{q}", lambda fig, q=q: f"{percentile(fig.v2v_ms, q):.0f} ms",
            "new ≤ today + 50 ms")
    lines.append("")
    if new.false_interruptions:
        lines.append(f"New settings, acknowledgements that interrupted: {', '.join(new.false_interruptions)}.  ")
    if new.premature:
        after_function_word = [p for p in new.premature if sounds_unfinished(p.split(" ... ")[0])]
        lines.append(f"New settings, premature replies: {'; '.join(new.premature)} "
                     f"({len(after_function_word)} of them flagged by the transcript check).  ")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="each phrase this many times per setting "
                               "(1: about 4 minutes)")
    parser.add_argument("--stt", choices=("openai", "deepgram"), default="openai",
                        help="segment STT (openai) or streaming STT with interim results (deepgram)")
    parser.add_argument("--interim-every", type=float, default=0.25,
                        help="with --stt deepgram: seconds of audio between the double's interim results")
    parser.add_argument("--also-words", type=int, action="append", default=[],
                        help="also run the new settings with interrupt after this many words (a column each)")
    parser.add_argument("--write", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    STT["name"] = args.stt
    STT["interim_every_secs"] = args.interim_every
    for words in args.also_words:
        SETTINGS[f"{words} words"] = {"interrupt_after_words": words}
    import django

    django.setup()
    # The voice runtime needs no Django (apps.voice.testing runs it bare).
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    import logging

    logging.getLogger().setLevel(logging.ERROR)

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    figures = asyncio.run(run(args.repeats, lambda line: print(f"[{time.monotonic() - started:5.0f}s] {line}",
                                                               flush=True)))
    command = ".venv/bin/python benchmarks/turn_taking.py " + " ".join(sys.argv[1:])
    text = report(figures, command.strip(), f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(text)
    if args.write:
        with open(BASE_DIR / "benchmarks" / "RESULTS.md", "a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    main()
