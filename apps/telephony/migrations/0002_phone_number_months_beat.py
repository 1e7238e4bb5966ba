"""Schedule the monthly phone-number charge in each client's schema (the tenant-aware
beat scheduler runs it there): minute 30 of every hour on the 1st and 2nd, UTC. The
task records the month once it has begun in the client's timezone; it is idempotent."""
from django.db import migrations

TASK_NAME = "telephony: phone numbers of the month"


def install(apps, schema_editor):
    if getattr(schema_editor.connection, "schema_name", "public") == "public":
        return
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="*", day_of_month="1,2", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME, defaults={"task": "telephony.phone_number_months", "crontab": crontab, "enabled": True}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("telephony", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
