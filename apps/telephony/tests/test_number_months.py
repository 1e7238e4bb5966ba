"""Monthly phone-number charges: a beat entry in each client's schema, a task that
records that client's active numbers once per month with the carrier's cost."""
from decimal import Decimal

from django_celery_beat.models import PeriodicTask
from django_tenants.utils import tenant_context

from apps.billing.models import UsageEvent
from apps.telephony.models import PhoneNumber
from apps.telephony.tasks import phone_number_months


def _numbers(tenant_a, tenant_b):
    with tenant_context(tenant_a):
        PhoneNumber.objects.create(number="+15550001000", carrier="twilio")
        PhoneNumber.objects.create(number="+15550003000", carrier="telnyx")
        PhoneNumber.objects.create(number="+15550004000", carrier="plivo", is_active=False)
    with tenant_context(tenant_b):
        PhoneNumber.objects.create(number="+15550002000", carrier="twilio")


def _events(tenant):
    return sorted(UsageEvent.objects.filter(client=tenant, metric="phone_number_months").values_list(
        "idempotency_key", "quantity", "provider", "provider_cost", "provider_cost_currency"))


def test_each_active_number_is_recorded_once_per_month(tenant_a, tenant_b):
    _numbers(tenant_a, tenant_b)
    with tenant_context(tenant_a):
        assert phone_number_months.run(now="2026-03-01T00:30:00+00:00") == 2
        assert phone_number_months.run(now="2026-03-02T23:30:00+00:00") == 0  # the next runs add nothing
    assert _events(tenant_a) == [
        ("phone:+15550001000:2026-03", Decimal("1.000000"), "twilio", Decimal("1.15000000"), "USD"),
        ("phone:+15550003000:2026-03", Decimal("1.000000"), "telnyx", Decimal("1.00000000"), "USD"),
    ]
    assert _events(tenant_b) == []  # each client's schema records its own numbers only

    with tenant_context(tenant_a):
        assert phone_number_months.run(now="2026-04-01T00:30:00+00:00") == 2
    assert [key for key, *_ in _events(tenant_a)] == [
        "phone:+15550001000:2026-03", "phone:+15550001000:2026-04",
        "phone:+15550003000:2026-03", "phone:+15550003000:2026-04"]


def test_a_client_behind_utc_is_recorded_once_its_month_has_begun(tenant_a, tenant_b):
    _numbers(tenant_a, tenant_b)
    tenant_a.timezone = "America/New_York"
    tenant_a.save(update_fields=["timezone"])
    with tenant_context(tenant_a):
        assert phone_number_months.run(now="2026-03-01T02:30:00+00:00") == 0  # 21:30 on Feb 28 in New York
        assert _events(tenant_a) == []
        assert phone_number_months.run(now="2026-03-01T05:30:00+00:00") == 2
    occurred = UsageEvent.objects.filter(client=tenant_a, metric="phone_number_months").values_list(
        "occurred_at", flat=True)
    assert {moment.isoformat() for moment in occurred} == {"2026-03-01T05:00:00+00:00"}  # local midnight


def test_the_public_schema_records_nothing(tenant_a, tenant_b):
    _numbers(tenant_a, tenant_b)
    assert phone_number_months.run(now="2026-03-01T00:30:00+00:00") == 0
    assert UsageEvent.objects.filter(metric="phone_number_months").count() == 0


def test_beat_runs_it_in_every_client_schema_on_the_first_and_second(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            entry = PeriodicTask.objects.get(task="telephony.phone_number_months")
            crontab = entry.crontab
            assert (entry.enabled, crontab.minute, crontab.hour, crontab.day_of_month, str(crontab.timezone)) == (
                True, "30", "*", "1,2", "UTC")
    assert not PeriodicTask.objects.filter(task="telephony.phone_number_months").exists()  # public: none


def test_every_clients_entry_loads_into_one_beat_schedule(committed_db):
    """The tenant-aware scheduler merges all schemas and refuses duplicate names.
    (No wrapping transaction: Celery's Django fixup closes the connection, as in beat.)"""
    from tenant_schemas_celery.db_scheduler import TenantAwareDatabaseScheduler

    from config.celery import app

    schedule = TenantAwareDatabaseScheduler(app=app, lazy=False).schedule
    names = sorted(name for name in schedule if name.startswith("telephony: phone numbers of the month"))
    assert "telephony: phone numbers of the month [acme]" in names
    assert "telephony: phone numbers of the month [globex]" in names
    assert schedule["telephony: phone numbers of the month [acme]"].options["headers"]["_schema_name"] == "acme"
