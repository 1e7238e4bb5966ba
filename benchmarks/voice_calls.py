"""Concurrent simulated calls through daphne, beside a bare Pipecat pipeline fed the
same audio in the same run. Not a test: it writes figures to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/voice_calls.py --calls 20 [--lines hello.wav yes.wav no.wav] [--write]

What it does:
1. embedded PostgreSQL + Redis (config.settings.test, own SWITCHBOARD_VAR_DIR), migrates, seeds a
   `bench` client whose agent uses the OpenAI-compatible double (no delay) for STT, LLM and TTS;
2. starts the double, daphne (config.asgi) and the bare Pipecat baseline, each its own process;
3. voice-to-voice = caller's last audible frame -> first audible agent frame, measured by the
   Twilio caller; "platform-added" = Switchboard's v2v minus the bare pipeline's v2v (same VAD
   stop, same doubles, same audio), both at one call at a time;
4. then N concurrent calls: v2v, outbound frame lateness against a 20 ms playout clock, and
   daphne's CPU and RSS per call (psutil, sampled every 0.5 s).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("SWITCHBOARD_VAR_DIR", "/tmp/sb-bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _bench_fernet_key() -> str:
    """The bench database outlives a run: keep its encryption key beside it."""
    from cryptography.fernet import Fernet

    path = Path(os.environ["SWITCHBOARD_VAR_DIR"]) / "bench-fernet.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
    return path.read_text().strip()


os.environ.setdefault("FIELD_ENCRYPTION_KEYS", _bench_fernet_key())

NUMBER = "+15550003000"
TOKEN = "bench-twilio-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing on port {port}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def seed(double_url: str, vad_stop: float) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount
    from apps.telephony.models import PhoneNumber
    from apps.tenancy.models import Client
    from apps.tenancy.services import client_create

    call_command("migrate", "--noinput", verbosity=0)
    if not Client.objects.filter(slug="bench").exists():
        client_create(slug="bench", name="Bench", domain="bench.localhost", admin_email="admin@bench.test",
                      admin_password="bench-password-1")
    client = Client.objects.get(slug="bench")
    with tenant_context(client):
        ProviderAccount.objects.update_or_create(provider="openai_compatible",
                                                 defaults={"api_key": "sk-bench", "base_url": double_url})
        agent = agent_save(
            name="Bench agent", greeting="", system_prompt="Bench.", vad_stop_secs=vad_stop,
            stt_provider="openai_compatible", stt_settings={"model": "whisper-1"},
            llm_provider="openai_compatible", llm_settings={"model": "gpt-4o-mini"},
            tts_provider="openai_compatible", tts_settings={"voice": "alloy", "model": "gpt-4o-mini-tts"},
            idle_timeout_secs=120, max_call_secs=600,
        )
        PhoneNumber.objects.update_or_create(number=NUMBER, defaults={
            "agent": agent, "carrier": "twilio", "account_sid": "AC" + "0" * 32, "auth_token": TOKEN})


async def one_call(server: str, lines, *, stagger: float = 0.0):
    from apps.voice.simulate import simulate_call

    await asyncio.sleep(stagger)
    return await simulate_call(server=server, host="bench.localhost", to_number=NUMBER, auth_token=TOKEN,
                               lines=lines, wait_for_greeting=False, quiet_secs=0.5)


async def bare_call(port: int, lines) -> list[float]:
    from apps.core.doubles.twilio_caller import TwilioCaller

    caller = TwilioCaller(f"ws://127.0.0.1:{port}", stream_sid="MZbare")
    await caller.connect()
    await asyncio.sleep(0.5)
    results = []
    for line in lines:
        utterance = await caller.say(line.pcm_8k, line.label)
        await utterance.done.wait()
        heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
        await caller.wait_for_agent_quiet(quiet_secs=0.5)
        results.append((heard - utterance.speech_end_at) * 1000)
    await caller.hang_up()
    return results


def server_side_turns(since) -> list[dict]:
    """The per-turn trace the runtime recorded for the calls since `since`."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from apps.calls.models import Turn
    from apps.tenancy.models import Client

    with tenant_context(Client.objects.get(slug="bench")):
        rows = list(Turn.objects.filter(call__created_at__gte=since, voice_to_voice_ms__isnull=False).values(
            "voice_to_voice_ms", "stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms"))
    connection.close()
    return rows


class Sampler:
    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.rss: list[int] = []
        self._task = None

    def cpu_secs(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    async def _run(self):
        while True:
            self.rss.append(self.process.memory_info().rss)
            await asyncio.sleep(0.5)

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self):
        self._task.cancel()


async def run(args) -> dict:
    import psutil

    from apps.core.doubles.audio import FIXTURES_DIR
    from apps.voice.simulate import line_from_wav

    lines = [line_from_wav(str(FIXTURES_DIR / name)) for name in args.lines]
    server = f"http://127.0.0.1:{args.daphne_port}"

    # Warm up (model loads, first connections).
    await one_call(server, lines[:1])
    await bare_call(args.bare_port, lines[:1])

    # One call at a time: Switchboard vs bare Pipecat, alternating.
    ours, bare = [], []
    for _ in range(args.sequential):
        result = await one_call(server, lines)
        ours += [line.voice_to_voice_ms for line in result.lines if line.voice_to_voice_ms is not None]
        bare += await bare_call(args.bare_port, lines)

    # N concurrent calls.
    sampler = Sampler(args.daphne_pid)
    await asyncio.sleep(1.0)
    from django.utils import timezone

    concurrent_since = timezone.now()
    rss_before = psutil.Process(args.daphne_pid).memory_info().rss
    others = {"double": psutil.Process(args.double_pid), "caller (this process)": psutil.Process()}
    others_before = {name: sum(proc.cpu_times()[:2]) for name, proc in others.items()}
    machine_before = psutil.cpu_times()
    cpu_before, wall_before = sampler.cpu_secs(), time.monotonic()
    sampler.start()
    results = await asyncio.gather(*[one_call(server, lines, stagger=i * args.stagger) for i in range(args.calls)],
                                   return_exceptions=True)
    wall = time.monotonic() - wall_before
    cpu = sampler.cpu_secs() - cpu_before
    other_cores = {name: (sum(proc.cpu_times()[:2]) - others_before[name]) / wall for name, proc in others.items()}
    machine_after = psutil.cpu_times()
    machine_busy = 1 - (machine_after.idle - machine_before.idle) / (sum(machine_after) - sum(machine_before))
    sampler.stop()
    await asyncio.sleep(2.0)  # let the last records land
    server_turns = await asyncio.to_thread(server_side_turns, concurrent_since)
    failures = [r for r in results if isinstance(r, BaseException)]
    completed = [r for r in results if not isinstance(r, BaseException)]
    concurrent_v2v = [line.voice_to_voice_ms for r in completed for line in r.lines if line.voice_to_voice_ms is not None]
    unanswered = sum(1 for r in completed for line in r.lines if line.voice_to_voice_ms is None)
    lateness_ms = [x * 1000 for r in completed for x in r.frame_lateness]
    return {
        "ours_sequential": ours, "bare_sequential": bare, "concurrent_v2v": concurrent_v2v,
        "lateness_ms": lateness_ms, "cpu_secs": cpu, "wall_secs": wall,
        "rss_before": rss_before, "rss_peak": max(sampler.rss or [rss_before]),
        "server_turns": server_turns, "other_cores": other_cores, "machine_busy": machine_busy,
        "failures": [repr(f) for f in failures], "unanswered": unanswered, "completed": len(completed),
    }


def report(args, figures: dict) -> str:
    ours, bare = figures["ours_sequential"], figures["bare_sequential"]
    added = [o - b for o, b in zip(sorted(ours), sorted(bare), strict=False)]
    concurrent = figures["concurrent_v2v"]
    cores = figures["cpu_secs"] / figures["wall_secs"]
    per_call_core = cores / max(1, args.calls)
    rss_per_call_mb = (figures["rss_peak"] - figures["rss_before"]) / max(1, args.calls) / 2**20
    late = figures["lateness_ms"]
    vad = args.vad_stop * 1000
    rows = [
        ("voice-to-voice, Switchboard, 1 call at a time", ours),
        ("voice-to-voice, bare Pipecat, 1 call at a time", bare),
        (f"voice-to-voice, Switchboard, {args.calls} concurrent calls", concurrent),
    ]
    out = [
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/voice_calls.py', *sys.argv[1:]])}`  ",
        f"Machine: {os.cpu_count()} cores; doubles without delay; VAD stop {args.vad_stop} s; lines: "
        f"{', '.join(args.lines)}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| measure | n | p50 ms | p95 ms | p50 − VAD stop ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, values in rows:
        out.append(f"| {label} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 95):.0f} | "
                   f"{percentile(values, 50) - vad:.0f} |")
    out += [
        "",
        f"- **Platform-added latency** (Switchboard − bare Pipecat, sorted pairs, 1 call at a time): "
        f"p50 {percentile(added, 50):.0f} ms, p95 {percentile(added, 95):.0f} ms (target p95 ≤ 30 ms).",
        f"- **Concurrency**: {args.calls} calls ({figures['completed']} completed, {len(figures['failures'])} failed, "
        f"{figures['unanswered']} lines unanswered) used {cores:.2f} cores of daphne over {figures['wall_secs']:.1f} s "
        f"→ {per_call_core * 100:.1f}% of a core per call ≈ **{1 / per_call_core if per_call_core else 0:.0f} calls per core** "
        f"(target ≥ 50).",
        f"- **Outbound frame lateness** vs a 20 ms playout clock ({len(late)} frames): p50 {percentile(late, 50):.1f} ms, "
        f"p99 **{percentile(late, 99):.1f} ms** (target p99 ≤ 20 ms; negative = ahead of playout).",
        f"- **Memory**: daphne RSS {figures['rss_before'] / 2**20:.0f} MB before, peak {figures['rss_peak'] / 2**20:.0f} MB "
        f"→ **{rss_per_call_mb:.1f} MB per call** (target ≤ 15 MB).",
    ]
    out.append(
        f"- Whole machine {figures['machine_busy'] * 100:.0f}% busy during the concurrent phase; besides daphne: "
        + ", ".join(f"{name} {cores:.2f} cores" for name, cores in figures["other_cores"].items())
        + " (the callers and doubles share the same 2 cores)."
    )
    turns = figures["server_turns"]
    if turns:
        def p(key, q):
            return percentile([t[key] for t in turns if t[key] is not None], q)

        out.append(
            f"- **Server-side trace** of the concurrent calls ({len(turns)} turns; from the VAD's estimate of the end "
            f"of speech to the first audio frame handed to the socket): v2v p50 {p('voice_to_voice_ms', 50):.0f} / "
            f"p95 {p('voice_to_voice_ms', 95):.0f} ms; STT final p50 {p('stt_final_ms', 50):.0f} ms; "
            f"LLM TTFT p50 {p('llm_ttft_ms', 50):.0f} ms; TTS TTFB p50 {p('tts_ttfb_ms', 50):.0f} ms."
        )
    if figures["failures"]:
        out.append(f"- Failures: {figures['failures'][:3]}")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--sequential", type=int, default=3, help="calls for the 1-at-a-time comparison")
    parser.add_argument("--lines", nargs="+", default=["hello.wav", "yes.wav", "no.wav"])
    parser.add_argument("--vad-stop", type=float, default=0.5)
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between call starts")
    parser.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()

    double_port, args.daphne_port, args.bare_port = free_port(), free_port(), free_port()
    double_url = f"http://127.0.0.1:{double_port}/v1"
    print("starting services and seeding...", flush=True)
    seed(double_url, args.vad_stop)  # also starts the embedded database (env gets the URLs)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = BASE_DIR / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes = [
        subprocess.Popen([sys.executable, "-m", "apps.core.doubles.openai_server", "--port", str(double_port)],
                         cwd=BASE_DIR, env=env, stdout=open(logs / "double.log", "wb"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(args.daphne_port),
                          "config.asgi:application"],
                         cwd=BASE_DIR, env=env, stdout=open(logs / "daphne.log", "wb"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "benchmarks/bare_pipecat.py", "--port", str(args.bare_port),
                          "--base-url", double_url, "--vad-stop", str(args.vad_stop)],
                         cwd=BASE_DIR, env=env, stdout=open(logs / "bare.log", "wb"), stderr=subprocess.STDOUT),
    ]
    args.daphne_pid = processes[1].pid
    args.double_pid = processes[0].pid
    try:
        for port in (double_port, args.daphne_port, args.bare_port):
            wait_for_port(port)
        print(f"running: {args.sequential} sequential pairs, then {args.calls} concurrent calls...", flush=True)
        figures = asyncio.run(run(args))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        from config.devservices import stop_all

        stop_all()
    text = report(args, figures)
    print(text)
    if args.write:
        with open(BASE_DIR / "benchmarks" / "RESULTS.md", "a") as results:
            results.write(f"\n## {args.calls} concurrent calls\n\n{text}")
    print("median", statistics.median(figures["concurrent_v2v"]) if figures["concurrent_v2v"] else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
