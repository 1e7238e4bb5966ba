"""Schedule the call sweeper (calls.sweep) every minute, in the public schema: it
walks every client itself. See apps/calls/tasks.py."""
from django.db import migrations

TASK_NAME = "calls: sweep lost calls and unshipped usage"


def install(apps, schema_editor):
    if getattr(schema_editor.connection, "schema_name", "public") != "public":
        return
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME, defaults={"task": "calls.sweep", "interval": every_minute, "crontab": None, "enabled": True}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_pgvector"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
