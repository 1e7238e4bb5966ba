"""Schedule (public schema): every minute the webhook sweep (re-enqueue due deliveries of every
client) and the usage export (a no-op until a target is enabled); every 5 minutes the quality
sweep (post-call work a lost task never did)."""
from django.db import migrations

TASKS = {
    "webhooks: re-enqueue due deliveries": ("webhooks.sweep", 60),
    "usage export: push new usage events": ("usage_export.run", 60),
    "quality: post-call work a lost task missed": ("quality.sweep", 300),
}


def install(apps, schema_editor):
    if getattr(schema_editor.connection, "schema_name", "public") != "public":
        return
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, seconds) in TASKS.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": interval,
                                                                   "enabled": True})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(TASKS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("usage_export", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
