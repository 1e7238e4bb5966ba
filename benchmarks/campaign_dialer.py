"""Campaign dialer benchmark (not a test): dispatch N contacts (default 10,000) against the Twilio REST
double honouring calls per second and concurrency, and report

- the dialer's overhead per contact: the dispatcher's busy time (wall time minus the pacing sleeps
  and, with dial threads, minus its waits for a free dial thread) plus the dial threads' time in the
  dial door, minus the time spent in the carrier's REST dial (the HTTP round trip to the double), per
  contact. With dials inline (CAMPAIGN_DIAL_THREADS=1, and the code before dial threads) that is
  exactly busy time − carrier REST; with threads it is the same sum of work, counted in every thread.
  Also the dispatcher thread alone, without the dial door (`telephony_call_outbound`: Call row, dial);
- the achieved calls per second vs the configured one;
- the highest number of calls live at once (from the calls' own start/end times) vs the cap;
- dials per number at the carrier double (must be exactly 1 each: no double dials).

A "carrier" thread ends each call about a second after it was placed (the status callback
"no-answer"), so lines free up; dispatcher turns run back to back in this process, as a worker
would run `campaigns.dispatch` turn after turn.

    DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python benchmarks/campaign_dialer.py \
        [--contacts 10000] [--cps 50] [--max-concurrent 100] [--numbers 20] [--number-cps 5] [--threads 8]

Uses the embedded PostgreSQL and Redis of the checkout (config.devservices, development database, not the
test database) and a client `bench_dialer` (created once; its campaign data is removed at the start of each run).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.disable(logging.WARNING)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from devtools.doubles.twilio_rest import TwilioRestDouble  # noqa: E402

SLUG = "bench_dialer"


class _Clock:
    """The dialer module's `time`, counting the pacing sleeps as long as they really took (a sleep
    overshoots on a busy machine: that is waiting, not the dispatcher's work)."""

    def __init__(self):
        self.slept = 0.0

    def sleep(self, seconds):
        started = time.perf_counter()
        time.sleep(seconds)
        self.slept += time.perf_counter() - started

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


def _client():
    from apps.tenancy.models import Client
    from apps.tenancy.services import client_create

    call_command("migrate_schemas", verbosity=0)
    client = Client.objects.filter(slug=SLUG).first()
    return client or client_create(slug=SLUG, name="Dialer bench", domain="bench-dialer.localhost")[0]


def _reset(client):
    """Last run's rows out of the way (raw deletes: their secrets were encrypted with last run's keys)."""
    from apps.agents.models import Agent, AgentVersion
    from apps.calls.models import Call
    from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact, ContactImport, DoNotCallEntry
    from apps.providers.models import ProviderAccount
    from apps.telephony.models import PhoneNumber

    with tenant_context(client):
        for model in (CampaignAttempt, CampaignContact, ContactImport, DoNotCallEntry):
            model.objects.all()._raw_delete(connection.alias)
        Campaign.numbers.through.objects.all()._raw_delete(connection.alias)
        Campaign.objects.all()._raw_delete(connection.alias)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM calls_callusage; DELETE FROM calls_toolcall; DELETE FROM calls_turn")
        Call.objects.all()._raw_delete(connection.alias)
        PhoneNumber.objects.all()._raw_delete(connection.alias)
        Agent.objects.all().update(current_version=None)
        AgentVersion.objects.all()._raw_delete(connection.alias)
        Agent.objects.all()._raw_delete(connection.alias)
        ProviderAccount.objects.all()._raw_delete(connection.alias)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--cps", type=float, default=50.0, help="the campaign's calls per second")
    parser.add_argument("--max-concurrent", type=int, default=100)
    parser.add_argument("--numbers", type=int, default=20, help="caller IDs in the pool")
    parser.add_argument("--number-cps", type=int, default=5, help="CAMPAIGN_NUMBER_CALLS_PER_SECOND")
    parser.add_argument("--call-secs", type=float, default=1.0, help="how long each call lasts at the double")
    parser.add_argument("--threads", type=int, default=None, help="CAMPAIGN_DIAL_THREADS (default: the setting)")
    args = parser.parse_args()

    from apps.agents.services import agent_save
    from apps.calls.models import Call
    from apps.calls.services import call_carrier_status_update
    from apps.campaigns import services as dialer
    from apps.campaigns.models import Campaign
    from apps.providers.models import ProviderAccount
    from apps.telephony.carriers.registry import carrier_get
    from apps.telephony.models import PhoneNumber

    settings.CAMPAIGN_NUMBER_CALLS_PER_SECOND = args.number_cps
    settings.CAMPAIGN_MAX_CONCURRENT_PER_CLIENT = args.max_concurrent * 2
    settings.CAMPAIGN_MAX_CONCURRENT_PER_CARRIER_ACCOUNT = args.max_concurrent * 2
    if args.threads is not None:
        settings.CAMPAIGN_DIAL_THREADS = args.threads
    threads = getattr(settings, "CAMPAIGN_DIAL_THREADS", 1)
    client = _client()
    _reset(client)
    clock = _Clock()
    dialer.time = clock  # count the pacing sleeps
    twilio = carrier_get("twilio")
    real_dial, dial_secs = twilio.dial, [0.0]
    timing = threading.Lock()  # the dial threads add up their times
    main_thread = threading.current_thread()

    def timed_dial(**kwargs):
        started = time.perf_counter()
        try:
            return real_dial(**kwargs)
        finally:
            with timing:
                dial_secs[0] += time.perf_counter() - started

    object.__setattr__(twilio, "dial", timed_dial)
    import apps.telephony.services as telephony

    real_outbound, door_secs, door_inline_secs = telephony.telephony_call_outbound, [0.0], [0.0]

    def timed_outbound(**kwargs):
        started = time.perf_counter()
        try:
            return real_outbound(**kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with timing:
                door_secs[0] += elapsed
                if threading.current_thread() is main_thread:
                    door_inline_secs[0] += elapsed

    telephony.telephony_call_outbound = timed_outbound
    # The dispatcher's waits for its dial threads (a free thread; the batch's last dials) are not work.
    pool_waits = [0.0]
    pool_class = getattr(dialer, "_DialPool", None)
    for name in ("wait_for_slot", "drain") if pool_class else ():
        def timed_wait(self, _real=getattr(pool_class, name)):
            started = time.perf_counter()
            try:
                return _real(self)
            finally:
                if threading.current_thread() is main_thread:
                    pool_waits[0] += time.perf_counter() - started

        setattr(pool_class, name, timed_wait)

    with TwilioRestDouble() as carrier, tenant_context(client):
        settings.TWILIO_API_BASE_URL = carrier.url
        ProviderAccount.objects.create(provider="deepgram", api_key="dg")
        ProviderAccount.objects.create(provider="openai", api_key="oa")
        agent = agent_save(name="Bench", greeting="Hi", stt_provider="deepgram", stt_settings={"model": "nova-2"},
                           llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper",
                           tts_settings={})
        numbers = [PhoneNumber.objects.create(number=f"+1555010{index:04d}", agent=agent, carrier="twilio",
                                              account_sid="AC" + "2" * 32, auth_token="bench")
                   for index in range(args.numbers)]
        campaign = dialer.campaign_create(name="Bench", agent_id=agent.pk, number_ids=[n.pk for n in numbers],
                                          calls_per_second=args.cps, max_concurrent=args.max_concurrent)
        rows = "phone_number,first_name\n" + "".join(f"+1555{index:07d},Person {index}\n"
                                                     for index in range(args.contacts))
        started = time.perf_counter()
        dialer.campaign_contacts_import(campaign_id=campaign.pk, data=rows)
        import_secs = time.perf_counter() - started
        dialer.campaign_start(campaign_id=campaign.pk)
        # Warm the Twilio SDK (its first import takes seconds) outside the measurement.
        real_outbound(phone_number=numbers[0], to_number="+15559999999", idempotency_key="bench-warm-up",
                      agent=agent)
        carrier.dials.clear()
        dial_secs[0] = door_secs[0] = door_inline_secs[0] = pool_waits[0] = 0.0

        stop = threading.Event()

        def carrier_ends_calls():
            with tenant_context(client):
                while not stop.is_set():
                    due = list(Call.objects.filter(ended_at__isnull=True, idempotency_key__startswith="campaign:")
                               .exclude(carrier_call_id="").values_list("pk", "created_at"))
                    for call_id, created_at in due:
                        if (time.time() - created_at.timestamp()) >= args.call_secs:
                            call_carrier_status_update(call_id=call_id, carrier_status="no-answer")
                    time.sleep(0.1)
            connection.close()

        ender = threading.Thread(target=carrier_ends_calls, daemon=True)
        ender.start()
        turns, wall = 0, time.perf_counter()
        while Campaign.objects.get(pk=campaign.pk).status != "completed":
            dialer.campaign_dispatch(client=client, campaign_id=campaign.pk, budget_secs=5)
            turns += 1
            if time.perf_counter() - wall > 3600:
                print("gave up after an hour")
                break
        wall = time.perf_counter() - wall
        stop.set()
        ender.join(5)

        attempts = list(Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                        .order_by("created_at").values_list("created_at", flat=True))  # the dial moments
        spans = list(Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                     .values_list("created_at", "ended_at"))
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans if end],
                    key=lambda event: (event[0], event[1]))
    live = peak = 0
    for _moment, step in events:
        live += step
        peak = max(peak, live)
    dials = len(attempts)
    span = (attempts[-1] - attempts[0]).total_seconds() if dials > 1 else 0.0
    achieved = (dials - 1) / span if span else 0.0
    configured = min(args.cps, args.numbers * args.number_cps)
    busy = wall - clock.slept - pool_waits[0]  # the dispatcher thread's own time
    dispatcher_ms = (busy - door_inline_secs[0]) / dials * 1000  # without the dial door
    overhead_ms = dispatcher_ms + (door_secs[0] - dial_secs[0]) / dials * 1000
    double = [number for number, count in carrier.dials.items() if count > 1]
    print(f"machine: {platform.node()} {os.cpu_count()} cores (shared; noisy), Python {platform.python_version()}")
    print(f"contacts {args.contacts}, pool {args.numbers} numbers x {args.number_cps}/s, campaign {args.cps}/s, "
          f"max concurrent {args.max_concurrent}, calls last ~{args.call_secs}s, dial threads {threads}")
    print(f"CSV import: {import_secs:.2f} s ({import_secs / args.contacts * 1e6:.0f} us per row)")
    print(f"dispatch: {dials} dials in {wall:.1f} s over {turns} turns; pacing sleeps {clock.slept:.1f} s; "
          f"waits for dial threads {pool_waits[0]:.1f} s; carrier REST (double) {dial_secs[0]:.1f} s; "
          f"dial door incl. REST {door_secs[0]:.1f} s")
    print(f"overhead per contact (busy + door - carrier REST): {overhead_ms:.2f} ms; dialer alone (busy - dial "
          f"door): {dispatcher_ms:.2f} ms; dial door without REST: {(door_secs[0] - dial_secs[0]) / dials * 1000:.2f} "
          f"ms")
    print(f"calls per second: achieved {achieved:.2f} vs configured {configured:.2f} ({achieved / configured:.0%})")
    print(f"peak live calls: {peak} (cap {args.max_concurrent})")
    print(f"numbers dialled: {len(carrier.dials)} of {args.contacts}; dialled more than once: {len(double)}")
    return 0 if not double and len(carrier.dials) == args.contacts and peak <= args.max_concurrent else 1


if __name__ == "__main__":
    sys.exit(main())
