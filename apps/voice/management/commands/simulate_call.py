"""Place a simulated inbound Twilio call against a running server.

    manage.py simulate_call --client acme --number +15550001000 --say "Hello, who is this?" --say "Thanks, bye"
    manage.py simulate_call --client acme --number +15550001000 --wav hello.wav --json

The command plays Twilio: it signs and posts the inbound webhook with the
number's auth token, connects to the `<Stream>` from the TwiML, streams each
caller line in real time (waiting for the agent to finish answering), then
hangs up and prints the call's turns, transcript and voice-to-voice latencies.
"""
from __future__ import annotations

import json
import time

import aiohttp
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context


def _devtools():
    """The carrier player lives in the development package (devtools/), which the production
    image does not install: say so instead of failing on an import."""
    try:
        from devtools import simulate
        from devtools.doubles import audio
    except ImportError as exc:
        raise CommandError("simulate_call needs the development package devtools/ (a checkout of the "
                           "repository, as `make run` uses); the production image does not include it.") from exc
    return simulate, audio


class Command(BaseCommand):
    help = "Simulate an inbound Twilio call to a client's number (the server must be running)."

    def add_arguments(self, parser):
        parser.add_argument("--client", required=True, help="client slug, e.g. acme")
        parser.add_argument("--number", required=True, help="the client's number, E.164")
        parser.add_argument("--say", action="append", default=[], help="a caller line, spoken with Piper (repeatable)")
        parser.add_argument("--wav", action="append", default=[], help="a caller line as a WAV file (repeatable)")
        parser.add_argument("--from", dest="from_number", default="+15557654321")
        parser.add_argument("--server", default=f"http://127.0.0.1:{settings.PUBLIC_PORT}",
                            help="where the platform listens (default: %(default)s)")
        parser.add_argument("--register-with", default="",
                            help="an OpenAI double's URL: teach it what the --say lines say")
        parser.add_argument("--save-agent-audio", default="", help="write what the agent said to this WAV")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    def handle(self, *args, **options):
        from apps.calls.selectors import call_get
        from apps.telephony.models import PhoneNumber
        from apps.tenancy.selectors import client_get_by_slug

        if not options["say"] and not options["wav"]:
            raise CommandError("Give the caller something to say: --say TEXT or --wav FILE (repeatable).")
        simulate, audio = _devtools()
        line_from_text, line_from_wav, simulate_call = simulate.line_from_text, simulate.line_from_wav, \
            simulate.simulate_call
        wav_bytes = audio.wav_bytes
        client = client_get_by_slug(slug=options["client"])
        if client is None:
            raise CommandError(f"No client {options['client']!r}. Check the slug in the agency admin.")
        host = client.primary_domain_name
        with tenant_context(client):
            number = PhoneNumber.objects.filter(number=options["number"], carrier="twilio").first()
            if number is None:
                raise CommandError(f"{options['number']} is not a Twilio number of {client.slug}.")
            auth_token = number.auth_token
            account_sid = number.account_sid or "AC" + "0" * 32

        progress = (lambda message: None) if options["json"] else (lambda message: self.stdout.write(message))
        lines = [line_from_wav(path) for path in options["wav"]]
        if options["say"]:
            progress("synthesising caller lines with Piper...")
            lines += [line_from_text(text) for text in options["say"]]
        if options["register_with"]:
            async_to_sync(_register)(options["register_with"], [line for line in lines if line.label in options["say"]])

        progress(f"calling {options['number']} on {host} via {options['server']}")
        try:
            result = async_to_sync(simulate_call)(
                server=options["server"], host=host, to_number=options["number"], auth_token=auth_token,
                account_sid=account_sid, from_number=options["from_number"], lines=lines, on_progress=progress,
            )
        except (OSError, aiohttp.ClientError) as error:
            raise CommandError(f"Could not reach {options['server']} ({error}). Is the server running (make run)?") from error
        if options["save_agent_audio"]:
            with open(options["save_agent_audio"], "wb") as out:
                out.write(wav_bytes(result.agent_audio_pcm, 8000))

        with tenant_context(client):
            call = _wait_until_ended(call_get, result.call_id)
            turns = [
                {"index": t.index, "user_text": t.user_text, "bot_text": t.bot_text, "interrupted": t.interrupted,
                 "voice_to_voice_ms": t.voice_to_voice_ms, "stt_final_ms": t.stt_final_ms,
                 "llm_ttft_ms": t.llm_ttft_ms, "tts_ttfb_ms": t.tts_ttfb_ms,
                 "tool_calls": [tc.name for tc in t.tool_calls.all()]}
                for t in call.turns.order_by("index")
            ]
            transcript = call.transcript.read().decode() if call.transcript else ""
            summary = {
                "call_id": str(call.pk), "status": call.status, "end_reason": call.end_reason, "error": call.error,
                "greeting_ms": result.greeting_ms,
                "lines": [{"said": line.label, "voice_to_voice_ms": line.voice_to_voice_ms} for line in result.lines],
                "turns": turns, "transcript": transcript,
            }
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(f"\ncall {summary['call_id']}: {summary['status']} ({summary['end_reason']}) {summary['error']}")
        for turn in turns:
            self.stdout.write(
                f"  turn {turn['index']}: caller={turn['user_text']!r} agent={turn['bot_text']!r} "
                f"v2v={turn['voice_to_voice_ms']} ms stt={turn['stt_final_ms']} llm_ttft={turn['llm_ttft_ms']} "
                f"tts_ttfb={turn['tts_ttfb_ms']}{' interrupted' if turn['interrupted'] else ''}"
                f"{' tools=' + ','.join(turn['tool_calls']) if turn['tool_calls'] else ''}"
            )
        for line in result.lines:
            self.stdout.write(f"  heard by the caller: {line.label!r} -> agent after {line.voice_to_voice_ms} ms")
        self.stdout.write("transcript:\n" + transcript)


def _wait_until_ended(call_get, call_id: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        call = call_get(call_id=call_id)
        if call.is_ended or time.monotonic() > deadline:
            return call
        time.sleep(0.2)


async def _register(url: str, lines) -> None:
    wav_bytes = _devtools()[1].wav_bytes
    async with aiohttp.ClientSession() as session:
        for line in lines:
            form = aiohttp.FormData()
            form.add_field("text", line.label)
            form.add_field("file", wav_bytes(line.pcm_8k, 8000), filename="line.wav", content_type="audio/wav")
            async with session.post(url.rstrip("/") + "/_double/transcripts", data=form) as response:
                response.raise_for_status()
