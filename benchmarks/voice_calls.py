"""Concurrent simulated calls through daphne, beside a bare Pipecat pipeline fed the
same audio in the same run. Not a test: it writes figures to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/voice_calls.py --calls 10 20 40 [--sequential 10] [--daphne-procs 2] [--write]

What it does:
1. embedded PostgreSQL + Redis (config.settings.test, own SWITCHBOARD_VAR_DIR), migrates, seeds a
   `bench` client whose agent uses the OpenAI-compatible double (no delay) for STT, LLM and TTS;
2. starts the double, N daphne processes (config.asgi) and the bare Pipecat baseline, each its own process;
3. voice-to-voice = caller's last audible frame -> first audible agent frame, measured by the
   Twilio caller; "platform-added" = Switchboard's v2v minus the bare pipeline's v2v for the same
   line of back-to-back calls (same VAD stop, same doubles, same audio), one call at a time,
   `--sequential` calls x lines pairs; the CPU each side uses per call is counted meanwhile;
4. then each concurrent phase: v2v, outbound frame lateness against a 20 ms playout clock,
   daphne's CPU (all daphne processes, nothing else) and RSS per call (psutil), the callers'
   and the double's CPU apart, and the callers' own event-loop lag (a starved caller would
   report its own delays as ours).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

# Before importing config.devservices: it reads SWITCHBOARD_VAR_DIR when imported.
os.environ.setdefault("SWITCHBOARD_VAR_DIR", str(BASE_DIR / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from config.devservices import free_port, wait_for_port  # noqa: E402


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
    from devtools.simulate import simulate_call

    await asyncio.sleep(stagger)
    return await simulate_call(server=server, host="bench.localhost", to_number=NUMBER, auth_token=TOKEN,
                               lines=lines, wait_for_greeting=False, quiet_secs=0.5)


async def bare_call(port: int, lines) -> list[float | None]:
    from devtools.doubles.twilio_caller import TwilioCaller

    caller = TwilioCaller(f"ws://127.0.0.1:{port}", stream_sid="MZbare")
    await caller.connect()
    await asyncio.sleep(0.5)
    results = []
    for line in lines:
        utterance = await caller.say(line.pcm_8k, line.label)
        await utterance.done.wait()
        try:
            heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
            await caller.wait_for_agent_quiet(quiet_secs=0.5)
        except TimeoutError:
            results.append(None)
            continue
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


class ProcessGroup:
    """CPU and RSS of a set of processes (psutil); RSS sampled every 0.5 s."""

    def __init__(self, pids: list[int]):
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.rss_peak: list[int] = [0] * len(pids)
        self._task = None

    def cpu_secs(self) -> float:
        return sum(sum(process.cpu_times()[:2]) for process in self.processes)

    def rss(self) -> list[int]:
        return [process.memory_info().rss for process in self.processes]

    async def _run(self):
        while True:
            self.rss_peak = [max(a, b) for a, b in zip(self.rss_peak, self.rss(), strict=True)]
            await asyncio.sleep(0.5)

    def start(self):
        self.rss_peak = self.rss()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self):
        self._task.cancel()


class LoopLag:
    """How late this process's own event loop wakes up (the callers run on it):
    if the callers are starved, their timestamps are too and the figures lie."""

    def __init__(self):
        self.lag_ms: list[float] = []
        self._task = None

    async def _run(self):
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            self.lag_ms.append((time.monotonic() - before - 0.01) * 1000)

    def start(self):
        self.lag_ms = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self):
        self._task.cancel()


async def concurrent_phase(args, lines, servers: list[str], calls: int) -> dict:
    import psutil

    daphne = ProcessGroup(args.daphne_pids)
    others = {"double": ProcessGroup([args.double_pid]), "callers (this process)": ProcessGroup([os.getpid()])}
    lag = LoopLag()
    await asyncio.sleep(1.0)
    from django.utils import timezone

    since = timezone.now()
    rss_before = daphne.rss()
    others_before = {name: group.cpu_secs() for name, group in others.items()}
    machine_before = psutil.cpu_times()
    cpu_before, wall_before = daphne.cpu_secs(), time.monotonic()
    daphne.start()
    lag.start()
    # Calls spread round-robin over the daphne processes (one event loop each).
    results = await asyncio.gather(
        *[one_call(servers[i % len(servers)], lines, stagger=(i // args.burst) * args.stagger) for i in range(calls)],
        return_exceptions=True,
    )
    wall = time.monotonic() - wall_before
    cpu = daphne.cpu_secs() - cpu_before
    other_cores = {name: (group.cpu_secs() - others_before[name]) / wall for name, group in others.items()}
    machine_after = psutil.cpu_times()
    machine_busy = 1 - (machine_after.idle - machine_before.idle) / (sum(machine_after) - sum(machine_before))
    daphne.stop()
    lag.stop()
    await asyncio.sleep(2.0)  # let the last records land
    server_turns = await asyncio.to_thread(server_side_turns, since)
    failures = [r for r in results if isinstance(r, BaseException)]
    completed = [r for r in results if not isinstance(r, BaseException)]
    return {
        "calls": calls,
        "v2v": [line.voice_to_voice_ms for r in completed for line in r.lines if line.voice_to_voice_ms is not None],
        "unanswered": sum(1 for r in completed for line in r.lines if line.voice_to_voice_ms is None),
        "lateness_ms": [x * 1000 for r in completed for x in r.frame_lateness],
        "cpu_secs": cpu, "wall_secs": wall,
        "rss_added": sum(peak - before for peak, before in zip(daphne.rss_peak, rss_before, strict=True)),
        "rss_before": sum(rss_before),
        "server_turns": server_turns, "other_cores": other_cores, "machine_busy": machine_busy,
        "caller_loop_lag_ms": lag.lag_ms,
        "failures": [repr(f) for f in failures], "completed": len(completed),
    }


def meets_quality(phase: dict, one_call_p95: float) -> bool:
    """The capacity rule: every line answered, voice-to-voice p95 within 100 ms of one call alone,
    outbound frame lateness p99 <= 20 ms."""
    return (not phase["failures"] and phase["unanswered"] == 0 and bool(phase["v2v"])
            and percentile(phase["v2v"], 95) <= one_call_p95 + 100
            and percentile(phase["lateness_ms"], 99) <= 20)


async def run(args) -> dict:
    from devtools.doubles.audio import FIXTURES_DIR
    from devtools.simulate import line_from_wav

    lines = [line_from_wav(str(FIXTURES_DIR / name)) for name in args.lines]
    servers = [f"http://127.0.0.1:{port}" for port in args.daphne_ports]

    # Warm up (model loads, first connections) on every daphne and the bare server.
    for server in servers:
        await one_call(server, lines[:1])
    await bare_call(args.bare_port, lines[:1])

    # One call at a time, Switchboard and bare Pipecat alternating; every line paired with
    # the same line of the bare call right after it. Each side's CPU is counted while it runs.
    # Every daphne process is counted (the idle ones cost ~nothing): behind the web launcher
    # the kernel decides which process takes the call.
    daphne, bare_process = ProcessGroup(args.daphne_pids), ProcessGroup([args.bare_pid])
    pairs: list[tuple[float, float]] = []
    ours_cpu = bare_cpu = ours_secs = bare_secs = 0.0
    for _ in range(args.sequential):
        cpu, started = daphne.cpu_secs(), time.monotonic()
        result = await one_call(servers[0], lines)
        ours_cpu += daphne.cpu_secs() - cpu
        ours_secs += time.monotonic() - started
        cpu, started = bare_process.cpu_secs(), time.monotonic()
        bare = await bare_call(args.bare_port, lines)
        bare_cpu += bare_process.cpu_secs() - cpu
        bare_secs += time.monotonic() - started
        for line, bare_ms in zip(result.lines, bare, strict=True):
            if line.voice_to_voice_ms is not None and bare_ms is not None:
                pairs.append((line.voice_to_voice_ms, bare_ms))

    phases = [await concurrent_phase(args, lines, servers, calls) for calls in args.calls]
    return {
        "pairs": pairs,
        "ours_core_per_call": ours_cpu / ours_secs, "bare_core_per_call": bare_cpu / bare_secs,
        "phases": phases,
    }


def _pcts(values: list[float], fmt: str = "{:.0f}") -> str:
    return " / ".join(fmt.format(percentile(values, q)) for q in (50, 95, 99))


def report(args, figures: dict) -> str:
    pairs = figures["pairs"]
    ours = [o for o, _b in pairs]
    bare = [b for _o, b in pairs]
    added = [o - b for o, b in pairs]
    vad = args.vad_stop * 1000
    command = " ".join([".venv/bin/python", "benchmarks/voice_calls.py", *sys.argv[1:]])
    out = [
        f"Command: `{command}`  ",
        f"Runtime: `{args.runtime_label}`; machine: {os.cpu_count()} cores; {len(args.daphne_pids)} daphne process(es); "
        f"doubles without delay; VAD stop {args.vad_stop} s; lines: {', '.join(args.lines)}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "**One call at a time** (Switchboard and bare Pipecat alternating, each line paired with the same line):",
        "",
        "| measure | n | p50 / p95 / p99 ms | p50 − VAD stop ms |",
        "| --- | --- | --- | --- |",
        f"| voice-to-voice, Switchboard | {len(ours)} | {_pcts(ours)} | {percentile(ours, 50) - vad:.0f} |",
        f"| voice-to-voice, bare Pipecat | {len(bare)} | {_pcts(bare)} | {percentile(bare, 50) - vad:.0f} |",
        f"| **platform-added** (Switchboard − bare, per pair) | {len(added)} | **{_pcts(added)}** | target p95 ≤ 30 |",
        "",
        f"CPU while one call runs: Switchboard (daphne) {figures['ours_core_per_call'] * 100:.1f}% of a core, "
        f"bare Pipecat {figures['bare_core_per_call'] * 100:.1f}% of a core → at that rate "
        f"{1 / figures['ours_core_per_call']:.0f} vs {1 / figures['bare_core_per_call']:.0f} calls per core "
        f"(ours = {figures['bare_core_per_call'] / figures['ours_core_per_call'] * 100:.0f}% of bare).",
        "",
        "**Concurrent calls** (CPU and memory are daphne's only; callers and doubles measured apart):",
        "",
        "| calls | done / failed / lines unanswered | v2v p50 / p95 / p99 ms (n) | frame lateness p50 / p95 / p99 ms (n) "
        "| daphne cores | calls per core | meets quality | MB per call | callers' loop lag p99 ms | machine busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    one_call_p95 = percentile(ours, 95)
    for phase in figures["phases"]:
        cores = phase["cpu_secs"] / phase["wall_secs"]
        per_core = phase["calls"] / cores if cores else 0
        late = phase["lateness_ms"]
        out.append(
            f"| {phase['calls']} | {phase['completed']} / {len(phase['failures'])} / {phase['unanswered']} | "
            f"{_pcts(phase['v2v'])} ({len(phase['v2v'])}) | {_pcts(late, '{:.1f}')} ({len(late)}) | {cores:.2f} | "
            f"**{per_core:.0f}** | {'yes' if meets_quality(phase, one_call_p95) else 'no'} | "
            f"{phase['rss_added'] / phase['calls'] / 2**20:.1f} | "
            f"{percentile(phase['caller_loop_lag_ms'], 99):.1f} | {phase['machine_busy'] * 100:.0f}% |"
        )
    out.append("")
    good = [phase for phase in figures["phases"] if meets_quality(phase, one_call_p95)]
    if good:
        best = max(good, key=lambda phase: phase["calls"])
        cores = best["cpu_secs"] / best["wall_secs"]
        hosts = f" over {len(args.daphne_pids)} daphne processes" if len(args.daphne_pids) > 1 else ""
        out.append(f"**Capacity under quality** (every line answered, v2v p95 ≤ one call's {one_call_p95:.0f} + 100 ms, "
                   f"lateness p99 ≤ 20 ms; arrivals in bursts of {args.burst} every {args.stagger} s): "
                   f"{best['calls']} concurrent calls{hosts} at {cores:.2f} daphne cores = "
                   f"**{best['calls'] / cores:.0f} calls per daphne core** (the largest phase run that met it).")
    else:
        out.append(f"**Capacity under quality**: no phase met it (v2v p95 ≤ {one_call_p95:.0f} + 100 ms, lateness "
                   "p99 ≤ 20 ms, every line answered).")
    # Bare Pipecat's websocket server transport serves one client at a time, so the comparison is
    # its CPU per call from the one-at-a-time phase, measured in the same run.
    out.append(f"Bare Pipecat at its measured CPU per call: {1 / figures['bare_core_per_call']:.0f} calls per core "
               "(one call at a time, same run; its websocket server transport takes one client at a time).")
    out.append("")
    for phase in figures["phases"]:
        extras = ", ".join(f"{name} {cores:.2f} cores" for name, cores in phase["other_cores"].items())
        line = f"- {phase['calls']} calls: besides daphne, {extras}; daphne RSS before {phase['rss_before'] / 2**20:.0f} MB."
        turns = phase["server_turns"]
        if turns:
            def p(key, q, turns=turns):
                return percentile([t[key] for t in turns if t[key] is not None], q)

            line += (f" Server-side trace ({len(turns)} turns, VAD's end-of-speech estimate → first agent audio "
                     f"handed to the socket): v2v p50 {p('voice_to_voice_ms', 50):.0f} / p95 {p('voice_to_voice_ms', 95):.0f} ms; "
                     f"STT final p50 {p('stt_final_ms', 50):.0f}, LLM TTFT p50 {p('llm_ttft_ms', 50):.0f}, "
                     f"TTS TTFB p50 {p('tts_ttfb_ms', 50):.0f} ms.")
        if phase["failures"]:
            line += f" Failures: {phase['failures'][:3]}"
        out.append(line)
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10], help="concurrent phases, e.g. 10 20 40")
    parser.add_argument("--sequential", type=int, default=10, help="calls for the 1-at-a-time comparison "
                        "(x lines each = pairs)")
    parser.add_argument("--lines", nargs="+", default=["hello.wav", "yes.wav", "no.wav"])
    parser.add_argument("--vad-stop", type=float, default=0.5)
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between call starts (between bursts)")
    parser.add_argument("--burst", type=int, default=1, help="calls arriving together, as they do in production "
                        "(e.g. 5: five calls at once every --stagger seconds)")
    parser.add_argument("--daphne-procs", type=int, default=1, help="daphne processes (one event loop each)")
    parser.add_argument("--web-procs", type=int, default=0, help="N daphne processes on one port behind "
                        "scripts/web.py, as `make run` and production run them (calls per host)")
    parser.add_argument("--runtime-label", default="", help="what is being measured (e.g. a commit)")
    parser.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not args.runtime_label:
        args.runtime_label = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR,
                                            capture_output=True, text=True).stdout.strip() or "?"

    double_port, args.bare_port = free_port(), free_port()
    # --web-procs: one port, N daphne processes behind scripts/web.py (what `make run` and the
    # production image run); --daphne-procs: N separate daphnes on their own ports, calls round-robin.
    args.daphne_ports = [free_port() for _ in range(1 if args.web_procs else args.daphne_procs)]
    double_url = f"http://127.0.0.1:{double_port}/v1"
    print("starting services and seeding...", flush=True)
    seed(double_url, args.vad_stop)  # also starts the embedded database (env gets the URLs)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = BASE_DIR / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    double = subprocess.Popen([sys.executable, "-m", "devtools.doubles.openai_server", "--port", str(double_port)],
                              cwd=BASE_DIR, env=env, stdout=open(logs / "double.log", "wb"), stderr=subprocess.STDOUT)
    if args.web_procs:
        daphnes = [subprocess.Popen(
            [sys.executable, "scripts/web.py", "--port", str(args.daphne_ports[0]), "--workers", str(args.web_procs)],
            cwd=BASE_DIR, env=env, stdout=open(logs / "web.log", "wb"), stderr=subprocess.STDOUT)]
    else:
        daphnes = [
            subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                              "config.asgi:application"],
                             cwd=BASE_DIR, env=env, stdout=open(logs / f"daphne-{i}.log", "wb"),
                             stderr=subprocess.STDOUT)
            for i, port in enumerate(args.daphne_ports)
        ]
    bare = subprocess.Popen([sys.executable, "benchmarks/bare_pipecat.py", "--port", str(args.bare_port),
                             "--base-url", double_url, "--vad-stop", str(args.vad_stop)],
                            cwd=BASE_DIR, env=env, stdout=open(logs / "bare.log", "wb"), stderr=subprocess.STDOUT)
    processes = [double, *daphnes, bare]
    args.daphne_pids = [process.pid for process in daphnes]
    args.double_pid, args.bare_pid = double.pid, bare.pid
    try:
        for port in (double_port, *args.daphne_ports, args.bare_port):
            wait_for_port(port, timeout=60.0)
        if args.web_procs:  # the daphne children of the launcher are what serves calls
            import psutil

            launcher = psutil.Process(daphnes[0].pid)
            for _ in range(100):
                children = launcher.children()
                if len(children) >= args.web_procs:
                    break
                time.sleep(0.1)
            args.daphne_pids = [child.pid for child in launcher.children()]
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
            results.write(f"\n### {args.runtime_label}: {', '.join(map(str, args.calls))} concurrent calls\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
