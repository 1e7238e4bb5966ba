"""Schedule the month-end run: minute 20 of every hour on the 1st and 2nd (UTC).
Every client's local month end (UTC-12 .. UTC+14) falls inside that window; the
task itself decides which clients are due and is idempotent."""
from django.db import migrations

TASK_NAME = "billing: month-end invoices"


def install(apps, schema_editor):
    if getattr(schema_editor.connection, "schema_name", "public") != "public":
        return
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="20", hour="*", day_of_month="1,2", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME, defaults={"task": "billing.month_end", "crontab": crontab, "enabled": True}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_ledger_and_invoice_guards"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
