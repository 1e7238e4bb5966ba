"""Where a live call's CPU goes: N concurrent Twilio-protocol calls against the Django-free
runtime (`apps.voice.testing.PlainMediaServer`) in this process, the callers in a process of
their own, the OpenAI-compatible double in a third. Not a test; prints figures.

    .venv/bin/python benchmarks/call_path_profile.py --calls 10 [--profile] [--top 40]

It reports the server process's CPU per call (all threads, and the event loop's thread alone)
over the phase, and with `--profile` a cProfile of the event loop's thread: the functions with
the most time of their own, and that time summed by package (ours, Pipecat, websockets,
asyncio...). cProfile slows everything it sees by about the same factor, so read the shares,
not the absolute times; the CPU figures come from a run without it.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


from config.devservices import free_port, wait_for_port  # noqa: E402

# -- the callers' process --------------------------------------------------------------------------

async def _callers(url: str, calls: int, lines: list[str], burst: int, stagger: float) -> dict:
    from devtools.doubles.audio import FIXTURES_DIR
    from devtools.doubles.twilio_caller import TwilioCaller
    from devtools.simulate import line_from_wav

    audio = [line_from_wav(str(FIXTURES_DIR / name)) for name in lines]

    async def one(index: int) -> dict:
        await asyncio.sleep((index // burst) * stagger)
        caller = TwilioCaller(url)
        await caller.connect()
        await asyncio.sleep(0.5)
        v2v = []
        for line in audio:
            utterance = await caller.say(line.pcm_8k, line.label)
            await utterance.done.wait()
            try:
                heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
                await caller.wait_for_agent_quiet(quiet_secs=0.5)
                v2v.append((heard - utterance.speech_end_at) * 1000)
            except TimeoutError:
                v2v.append(None)
        await caller.hang_up()
        return {"v2v": v2v, "lateness": caller.frame_lateness()}

    results = await asyncio.gather(*[one(i) for i in range(calls)])
    return {"v2v": [x for r in results for x in r["v2v"]],
            "lateness_ms": [x * 1000 for r in results for x in r["lateness"]]}


# -- the server (this process) -------------------------------------------------------------------

def _package(filename: str) -> str:
    if "apps/voice" in filename or "apps/telephony" in filename:
        return "switchboard " + filename.split("apps/", 1)[1]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest.split("/", 1)[0] if "/" in rest else rest
    return filename if filename.startswith("<") else "other"


class GcPauses:
    """The cyclic collector's pauses (they stop every call in the process), by generation."""

    def __init__(self):
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1000)

    def summary(self) -> str:
        return ", ".join(f"gen{g} {len(p)}x max {max(p, default=0):.1f} ms sum {sum(p):.0f} ms"
                         for g, p in self.pauses.items())


def _pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v is not None)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


async def _serve(args) -> None:
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)  # per-request lines at INFO (the benchmark runs daphne at WARNING too)
    from apps.voice.config import VoiceConfig
    from apps.voice.testing import PlainMediaServer

    if not args.no_gc_freeze:
        import gc

        gc.freeze()  # as config/asgi.py does once the application is loaded
    double_port = free_port()
    double = subprocess.Popen([sys.executable, "-m", "devtools.doubles.openai_server", "--port", str(double_port)],
                              cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_for_port, double_port, timeout=60.0)
        config = VoiceConfig(vad_stop_secs=args.vad_stop)
        server = await PlainMediaServer(base_url=f"http://127.0.0.1:{double_port}/v1", config=config).start()

        async def phase(calls: int, profile: bool) -> dict:
            command = [sys.executable, __file__, "--callers", server.url, "--calls", str(calls),
                       "--burst", str(args.burst), "--stagger", str(args.stagger), "--lines", *args.lines]
            import gc

            first_hooks = len(server.hooks)
            profiler = cProfile.Profile() if profile else None
            pauses = GcPauses()
            gc.callbacks.append(pauses)
            cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.monotonic()
            if profiler:
                profiler.enable()
            process = await asyncio.create_subprocess_exec(*command, cwd=BASE_DIR, stdout=asyncio.subprocess.PIPE)
            out, _ = await process.communicate()
            if profiler:
                profiler.disable()
            wall = time.monotonic() - wall
            gc.callbacks.remove(pauses)
            result = json.loads(out.decode().strip().splitlines()[-1])
            result.update(cpu=time.process_time() - cpu, loop_cpu=time.thread_time() - loop_cpu, wall=wall,
                          profiler=profiler, gc=pauses.summary())
            while len(server.hooks) and not all(h.ended.is_set() for h in server.hooks):
                await asyncio.sleep(0.1)
            turns = [t for h in server.hooks[first_hooks:] for t in h.turns if t.get("user_text")]
            result["server"] = " ".join(
                f"{key.removesuffix('_ms')} {_pct([t.get(key) for t in turns], 50):.0f}/{_pct([t.get(key) for t in turns], 95):.0f}"
                for key in ("stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"))
            return result

        await phase(1, False)  # warm up: models, first connections
        for calls in args.calls:
            result = await phase(calls, False)
            # Per call: CPU seconds per second of call (each call lasts about the phase's wall time).
            print(f"{calls} calls: wall {result['wall']:.1f} s, CPU {result['cpu'] / result['wall']:.3f} cores "
                  f"(event loop {result['loop_cpu'] / result['wall']:.3f}) = "
                  f"{result['cpu'] / result['wall'] / calls * 100:.2f} % of a core per call; "
                  f"v2v p50/p95 {_pct(result['v2v'], 50):.0f} / {_pct(result['v2v'], 95):.0f} ms; "
                  f"lateness p99 {_pct(result['lateness_ms'], 99):.1f} ms; load {os.getloadavg()[0]:.1f}\n"
                  f"    server-side p50/p95 ms: {result['server']}\n"
                  f"    GC pauses: {result['gc']}; slowest v2v {sorted(v or 1e9 for v in result['v2v'])[-4:]}",
                  flush=True)
        if args.profile:
            result = await phase(args.calls[-1], True)
            stats = pstats.Stats(result["profiler"])
            total = sum(row[2] for row in stats.stats.values())
            by_package: dict[str, float] = {}
            for (filename, _line, _name), row in stats.stats.items():
                key = _package(filename)
                by_package[key] = by_package.get(key, 0.0) + row[2]
            print(f"\nown time by package (profiled, {total:.1f} s in all):")
            for key, secs in sorted(by_package.items(), key=lambda kv: -kv[1])[:args.top]:
                print(f"  {secs / total * 100:5.1f} %  {key}")
            print()
            stats.sort_stats("tottime").print_stats(args.top)
            if args.dump:
                stats.dump_stats(args.dump)
        await server.stop()
    finally:
        double.terminate()
        double.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10])
    parser.add_argument("--lines", nargs="+", default=["hello.wav", "yes.wav", "no.wav"])
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--stagger", type=float, default=0.1)
    parser.add_argument("--vad-stop", type=float, default=0.5)
    parser.add_argument("--profile", action="store_true", help="one more phase (the last size) under cProfile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", default="", help="write the pstats file here")
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave what is loaded at start to the collector")
    parser.add_argument("--callers", default="", help=argparse.SUPPRESS)  # the callers' process
    args = parser.parse_args()
    if args.callers:
        result = asyncio.run(_callers(args.callers, args.calls[0], args.lines, args.burst, args.stagger))
        print(json.dumps(result))
        return
    import logging

    from loguru import logger

    logging.basicConfig(level=logging.WARNING, force=True)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
