"""Schedule, every minute (public schema): the webhook sweep (re-enqueue due deliveries of
every client) and the usage export (a no-op until a target is enabled)."""
from django.db import migrations

TASKS = {
    "webhooks: re-enqueue due deliveries": "webhooks.sweep",
    "usage export: push new usage events": "usage_export.run",
}


def install(apps, schema_editor):
    if getattr(schema_editor.connection, "schema_name", "public") != "public":
        return
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    for name, task in TASKS.items():
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": every_minute,
                                                                   "enabled": True})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(TASKS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("usage_export", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
